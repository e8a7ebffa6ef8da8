"""'When something new arrives': polling providers for new items, one run per item (issue 16)."""
