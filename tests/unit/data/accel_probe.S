/*
 * Source of accel.PROBE_IMAGE (plugins/module_utils/accel.py); tests/unit/test_accel.py
 * checks that the two match. Build:
 *   as --32 -o p.o accel_probe.S && ld -m elf_i386 -Ttext=0x100000 -o p.elf p.o && objcopy -O binary p.elf p.bin
 *
 * A multiboot (a.out kludge) image QEMU loads with -kernel. It does what a Linux kernel
 * does first: switches from 32-bit protected mode to 64-bit long mode with paging, then
 * runs a CPU-bound loop with no VM exits (on the hosts we met, a broken /dev/kvm runs
 * firmware and the kernel's real-mode setup but never gets through such a loop: the
 * kernel's decompressor), prints a marker to the debugcon port 0x402 and leaves QEMU
 * through isa-debug-exit (port 0xf4). About 0.3 s under TCG, milliseconds under KVM.
 */
    .set BASE, 0x100000
    .set MAGIC, 0x1BADB002
    .set FLAGS, 0x00010000              /* addresses below are valid (a.out kludge) */
    .set LOOPS, 50000000
    .code32
    .text
    .globl _start
_start:
header:
    .long MAGIC
    .long FLAGS
    .long -(MAGIC + FLAGS)
    .long BASE                          /* header_addr */
    .long BASE                          /* load_addr */
    .long 0                             /* load_end_addr: the whole file */
    .long 0                             /* bss_end_addr: no bss */
    .long BASE + (entry32 - header)     /* entry_addr */
entry32:
    /* Page tables at 0x70000: PML4 -> PDPT -> PD, one 2 MiB page identity-mapping 0..2 MiB. */
    mov $0x70000, %edi
    xor %eax, %eax
    mov $3072, %ecx
    rep stosl
    movl $0x71003, 0x70000
    movl $0x72003, 0x71000
    movl $0x83, 0x72000
    mov $0x70000, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax                      /* CR4.PAE */
    mov %eax, %cr4
    mov $0xC0000080, %ecx               /* EFER */
    rdmsr
    or $0x100, %eax                     /* EFER.LME */
    wrmsr
    mov %cr0, %eax
    or $0x80000000, %eax                /* CR0.PG: long mode active */
    mov %eax, %cr0
    lgdt BASE + (gdtr - header)
    ljmp $0x08, $(BASE + (entry64 - header))
    .code64
entry64:
    mov $LOOPS, %ecx
spin:
    dec %ecx
    jnz spin
    mov $0x402, %dx
    lea message(%rip), %rsi
    mov $(message_end - message), %ecx
    rep outsb
    mov $0xf4, %dx                      /* isa-debug-exit: QEMU exits with status 1 */
    xor %al, %al
    out %al, (%dx)
halt:
    hlt
    jmp halt
    .p2align 3
gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF            /* 64-bit code segment */
gdtr:
    .word gdtr - gdt - 1
    .long BASE + (gdt - header)
message:
    .ascii "GOSHIP-ACCEL-PROBE-OK\n"
message_end:
