"""The build chat: Claude drafts an automation from the catalog; only the client's approval saves it."""
