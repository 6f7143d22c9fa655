#!/usr/bin/env bash
# Writes a 512-byte x86 boot sector that the BIOS loads and runs as the whole guest:
#   spin: cli; jmp $        -> the vCPU runs at 100 %
#   halt: cli; hlt; jmp -3  -> the vCPU halts (about 0 %)
#   dirty: rewrites 512 KiB of guest RAM (0x10000-0x8ffff) with a new value each pass, at memory
#          speed: a live migration under a low bandwidth cap never converges (timeout tests)
# The file is then extended (sparse) to 1 MiB: SeaBIOS does not boot a 512-byte disk.
# usage: make-bootsector.sh spin|halt|dirty FILE
set -euo pipefail
mode="${1:-}" out="${2:-}"
case "$mode" in
    spin) code='\xfa\xeb\xfe' len=3 ;;
    halt) code='\xfa\xf4\xeb\xfd' len=4 ;;
    # cli; cld; xor ax,ax; L: mov bx,0x1000; S: mov es,bx; xor di,di; mov cx,0x8000; rep stosw;
    # add bx,0x1000; cmp bx,0x9000; jb S; inc ax; jmp L
    dirty) code='\xfa\xfc\x31\xc0\xbb\x00\x10\x8e\xc3\x31\xff\xb9\x00\x80\xf3\xab\x81\xc3\x00\x10\x81\xfb\x00\x90\x72\xed\x40\xeb\xe7' len=29 ;;
    *) echo "usage: make-bootsector.sh spin|halt|dirty FILE" >&2; exit 64 ;;
esac
[ -n "$out" ] || { echo "usage: make-bootsector.sh spin|halt|dirty FILE" >&2; exit 64; }
tmp="$out.tmp.$$"
{
    printf "$code"
    head -c $((510 - len)) /dev/zero
    printf '\x55\xaa'
} >"$tmp"
[ "$(stat -c %s "$tmp")" -eq 512 ] || { rm -f "$tmp"; echo "make-bootsector: not 512 bytes" >&2; exit 1; }
truncate -s 1M "$tmp"
mv "$tmp" "$out"
