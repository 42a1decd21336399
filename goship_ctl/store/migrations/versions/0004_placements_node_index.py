"""An index on placements.node_id: a node's placements were a scan of every project VM.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("placements", schema=None) as batch_op:
        batch_op.create_index("ix_placements_node_id", ["node_id"], unique=False)


def downgrade():
    with op.batch_alter_table("placements", schema=None) as batch_op:
        batch_op.drop_index("ix_placements_node_id")
