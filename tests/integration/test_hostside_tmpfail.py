import vm_harness
from ansible_collections.goship.core.plugins.module_utils.guest_channel import wait_for_hello
def test_fail(guest_image, state_root, scratch_vm):
    spec = vm_harness.image_spec(guest_image[0], state_root, vm_harness.scratch_node("fail"), "alpha", "qemu")
    vm = scratch_vm(spec)
    vm.start()
    wait_for_hello(spec.paths.channel, 120)
    assert False, "deliberate"
