"""The migration files are numbered as shared/migrations/README.md says: new ones above the rest."""

from __future__ import annotations

from shared.db.migrate import discover

# Never used (see shared/migrations/README.md); a file may not fill them later.
UNUSED_NUMBERS = {5, 8}


def test_the_only_gaps_in_the_numbering_are_the_two_never_used():
    versions = [migration.version for migration in discover()]
    assert versions == sorted(versions) and versions[0] == 1
    missing = set(range(1, versions[-1] + 1)) - set(versions)
    assert missing == UNUSED_NUMBERS, (
        "a migration was numbered into a gap or a number was skipped: number a new migration one above "
        f"the highest (gaps {sorted(missing)}, see shared/migrations/README.md)")
