"""What guest_init reads from /sys and /proc, on fake trees: port and power button discovery,
mountinfo, kernel command line."""

import struct

from guest_init import channel, pid1, powerbutton


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_find_port_by_name(tmp_path):
    write(tmp_path / "vport0p1" / "name", "org.qemu.guest_agent.0\n")
    write(tmp_path / "vport1p2" / "name", "org.goship.init.0\n")
    (tmp_path / "vport1p3").mkdir()  # a port without a name
    assert channel.find_port("org.goship.init.0", str(tmp_path)) == "/dev/vport1p2"
    assert channel.find_port("org.other", str(tmp_path)) is None
    assert channel.find_port("org.goship.init.0", str(tmp_path / "absent")) is None


def test_find_power_buttons(tmp_path):
    write(tmp_path / "event0" / "device" / "name", "AT Translated Set 2 keyboard\n")
    write(tmp_path / "event1" / "device" / "name", "Power Button\n")
    write(tmp_path / "event2" / "device" / "name", "Power Button\n")
    write(tmp_path / "input1" / "name", "Power Button\n")
    assert powerbutton.find_power_buttons(str(tmp_path)) == ["/dev/input/event1", "/dev/input/event2"]


def test_input_event_layout_matches_64bit_kernel():
    assert powerbutton.EVENT.size == 24
    assert powerbutton.EVENT.unpack(struct.pack("qqHHi", 1, 2, 1, 116, 1)) == (1, 2, 1, 116, 1)


def test_mount_points_unescape(tmp_path):
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 0:21 / / rw,relatime - overlay overlay rw\n"
        "23 22 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw\n"
        "24 22 0:30 / /mnt/with\\040space rw - tmpfs tmpfs rw\n")
    assert pid1.mount_points(str(mountinfo)) == ["/", "/dev", "/mnt/with space"]
    assert pid1.mount_points(str(tmp_path / "none")) == []


def test_real_mountinfo_has_root():
    assert "/" in pid1.mount_points()


def test_kernel_cmdline_keeps_goship_keys(tmp_path):
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("console=ttyS0 quiet goship.hostname=web-1 goship.debug=1 root=/dev/vda goship.flag\n")
    assert pid1.kernel_cmdline(str(cmdline)) == {"goship.hostname": "web-1", "goship.debug": "1", "goship.flag": ""}
