"""Guest image builder: Debian packages -> ``vmlinuz``, ``initrd.img`` (stage0),
``rootfs.squashfs`` and ``manifest.json``. Entry point: ``goship_ctl.image.build.build_image``.
"""
