"""OCI images in the guest: read an image layout, verify its blobs, unpack its layers into a
root filesystem shared by replicas, and write per-replica OCI runtime bundles for crun.

Images arrive as OCI image layouts (docs/images.md); nothing here touches a network.
"""
