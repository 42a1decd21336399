"""Projects remember the generation of their last VM-level change (``vm_generation``).

Existing projects start at their current generation: the next change of their apps alone then
takes the fast path (apps.yml) only once a full reconcile has seen that generation.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vm_generation", sa.Integer(), nullable=False, server_default="1"))
    op.execute("UPDATE projects SET vm_generation = generation")


def downgrade():
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("vm_generation")
