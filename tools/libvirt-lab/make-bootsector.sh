#!/usr/bin/env bash
# Writes a 512-byte x86 boot sector that the BIOS loads and runs as the whole guest:
#   spin: cli; jmp $        -> the vCPU runs at 100 %
#   halt: cli; hlt; jmp -3  -> the vCPU halts (about 0 %)
#   dirty: rewrites 512 KiB of guest RAM (0x10000-0x8ffff) with a new value each pass, at memory
#          speed: a live migration under a low bandwidth cap never converges (timeout tests)
#   duty [P]: a duty cycle that follows a value set at run time. The PIT ticks at 20 Hz; each
#          50 ms tick the guest spins for P % of the tick (it reads the PIT counter), then `hlt`s
#          until the next tick, so the vCPU thread really sleeps (100 - P) % of the time (a CPU
#          quota would not: the capped time shows up as run-queue wait, which dvms counts as
#          demand). P starts at the given value (default 0) and is set by one byte 0..100 written
#          to COM1 (the lab's serial chardev); other bytes are ignored. Source (GNU as, .code16;
#          `as --32 && objcopy -O binary -j .text`), the initial P is the byte after `iret`:
#            cli; xor ax,ax; mov ds,ax; mov ss,ax; mov sp,0x7c00
#            mov word [0x20],handler; mov word [0x22],0        ; IRQ0 (int 8) -> handler
#            mov al,0x34; out 0x43,al; mov al,0x0b; out 0x40,al; mov al,0xe9; out 0x40,al
#                                                             ; PIT ch0 mode 2, 59659 = 20 Hz
#            in al,0x21; and al,0xfe; out 0x21,al              ; unmask IRQ0
#            mov bl,[duty]; call compute
#     main:  sti; mov dx,0x3fd; in al,dx; test al,1; jz nobyte ; COM1 data ready?
#            mov dx,0x3f8; in al,dx; cmp al,100; ja nobyte; mov bl,al; call compute
#   nobyte:  cmp bl,100; jae main                              ; 100 %: spin (still polling)
#     spin:  xor al,al; out 0x43,al; in al,0x40; mov ah,al; in al,0x40; xchg al,ah
#            cmp ax,di; ja spin                                ; until P % of the tick passed
#            hlt; jmp main                                     ; sleep until the next tick
#  compute:  mov al,100; sub al,bl; xor ah,ah; mov cx,59659; mul cx; mov cx,100; div cx
#            mov di,ax; ret                                    ; di = 59659 * (100 - P) / 100
#  (20 Hz rather than 100 Hz: with a dozen guests on a busy machine, the wake-up latency after
#  each tick made 100 Hz guests use 20-40 % less than asked; at 20 Hz it is a few percent.)
#  handler:  push ax; mov al,0x20; out 0x20,al; pop ax; iret  ; EOI
# The file is then extended (sparse) to 1 MiB: SeaBIOS does not boot a 512-byte disk.
# usage: make-bootsector.sh spin|halt|dirty|duty [P] FILE
set -euo pipefail
mode="${1:-}" out="${2:-}"
if [ "$mode" = duty ] && [ $# -eq 3 ]; then
    p="$2" out="$3"
    [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -le 100 ] || { echo "make-bootsector: duty P must be 0..100" >&2; exit 64; }
else
    p=0
fi
case "$mode" in
    spin) code='\xfa\xeb\xfe' len=3 ;;
    halt) code='\xfa\xf4\xeb\xfd' len=4 ;;
    # cli; cld; xor ax,ax; L: mov bx,0x1000; S: mov es,bx; xor di,di; mov cx,0x8000; rep stosw;
    # add bx,0x1000; cmp bx,0x9000; jb S; inc ax; jmp L
    dirty) code='\xfa\xfc\x31\xc0\xbb\x00\x10\x8e\xc3\x31\xff\xb9\x00\x80\xf3\xab\x81\xc3\x00\x10\x81\xfb\x00\x90\x72\xed\x40\xeb\xe7' len=29 ;;
    duty)
        code='\xfa\x31\xc0\x8e\xd8\x8e\xd0\xbc\x00\x7c\xc7\x06\x20\x00\x70\x7c\xc7\x06\x22\x00\x00\x00\xb0\x34\xe6\x43\xb0\x0b\xe6\x40\xb0\xe9\xe6\x40\xe4\x21\x24\xfe\xe6\x21\x8a\x1e\x77\x7c\xe8\x2e\x00\xfb\xba\xfd\x03\xec\xa8\x01\x74\x0d\xba\xf8\x03\xec\x3c\x64\x77\x05\x88\xc3\xe8\x18\x00\x80\xfb\x64\x73\xe5\x30\xc0\xe6\x43\xe4\x40\x88\xc4\xe4\x40\x86\xc4\x39\xf8\x77\xf0\xf4\xeb\xd2\xb0\x64\x28\xd8\x30\xe4\xb9\x0b\xe9\xf7\xe1\xb9\x64\x00\xf7\xf1\x89\xc7\xc3\x50\xb0\x20\xe6\x20\x58\xcf'
        code="$code$(printf '\\x%02x' "$p")" len=120 ;;
    *) echo "usage: make-bootsector.sh spin|halt|dirty|duty [P] FILE" >&2; exit 64 ;;
esac
[ -n "$out" ] || { echo "usage: make-bootsector.sh spin|halt|dirty|duty [P] FILE" >&2; exit 64; }
tmp="$out.tmp.$$"
{
    printf "$code"
    head -c $((510 - len)) /dev/zero
    printf '\x55\xaa'
} >"$tmp"
[ "$(stat -c %s "$tmp")" -eq 512 ] || { rm -f "$tmp"; echo "make-bootsector: not 512 bytes" >&2; exit 1; }
truncate -s 1M "$tmp"
mv "$tmp" "$out"
