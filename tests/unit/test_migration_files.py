"""The migration files are numbered as shared/migrations/README.md says, and the committed schema is a real one."""

from __future__ import annotations

from shared.db.migrate import discover
from tests.schema_snapshot import SNAPSHOT

# Never used (see shared/migrations/README.md); a file may not fill them later.
UNUSED_NUMBERS = {5, 8}


def test_the_only_gaps_in_the_numbering_are_the_two_never_used():
    versions = [migration.version for migration in discover()]
    assert versions == sorted(versions) and versions[0] == 1
    missing = set(range(1, versions[-1] + 1)) - set(versions)
    assert missing == UNUSED_NUMBERS, (
        "a migration was numbered into a gap or a number was skipped: number a new migration one above "
        f"the highest (gaps {sorted(missing)}, see shared/migrations/README.md)")


def test_the_committed_schema_holds_what_the_security_page_promises():
    """The snapshot is not an empty file that anything would match."""
    schema = SNAPSHOT.read_text(encoding="utf-8")
    assert "ALTER TABLE ONLY public.connections FORCE ROW LEVEL SECURITY;" in schema
    assert "CREATE POLICY tenant_isolation ON public.connections USING ((client_id = " in schema
    assert "SECURITY DEFINER" in schema and "OWNER TO hapex_definer;" in schema
    assert "GRANT SELECT,DELETE ON TABLE public.automations TO hapex_intake;" in schema
    # The intake may neither read a session hash nor write a webhook secret's (migration 0016).
    assert "GRANT SELECT(client_id) ON TABLE public.sessions TO hapex_intake;" in schema
    assert "session_hash) ON TABLE public.sessions TO hapex_intake" not in schema
    assert "webhook_secret_hash) ON TABLE public.automations TO hapex_intake" not in schema
