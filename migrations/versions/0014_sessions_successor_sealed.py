"""Sessions: the sealed successor of the last rotation, kept in the session row.

A refresh that presents the previous token within the grace window (two tabs, a lost
response) gets the current successor. The successor is kept sealed: XOR-ed with a pad derived
from the previous raw token, which the database never holds (it stores SHA-256 hashes), so the
column alone never reveals a usable refresh token. In the row, the rotation and its successor
are written by one statement, so a concurrent refresh of the same token either rotates itself
(it got the row lock first) or finds the successor next to the hash it presented.
"""

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"


def upgrade() -> None:
    op.execute("ALTER TABLE sessions ADD COLUMN successor_sealed bytea CHECK (length(successor_sealed) = 32)")


def downgrade() -> None:
    op.execute("ALTER TABLE sessions DROP COLUMN IF EXISTS successor_sealed")
