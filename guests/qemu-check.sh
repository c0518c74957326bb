#!/usr/bin/env bash
# Run every guest workload under QEMU TCG and check the RESULT lines and exit status.
#
#   guests/qemu-check.sh            # pc machine: each workload, then workload=all;
#                                   # plus direct64 (shim) and microvm virtio-blk runs if possible
#   guests/qemu-check.sh fork tlb   # only these workloads (pc machine)
#
# Expected: every run exits with status 1 (= isa-debug-exit value 0: (0<<1)|1),
# prints "DONE status=0", no FAIL line, and one well-formed RESULT line per workload
# (cycles_per_iter == cycles / iterations).  Under QEMU pc there is no virtio-mmio,
# so `io` must print "RESULT name=io skipped=1".
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
QEMU=${QEMU:-qemu-system-x86_64}
IMG32=$HERE/images/kernel32.elf
IMG64=$HERE/images/kernel.elf
TIMEOUT=${TIMEOUT:-60}
ALL=(cpuid msr wrmsr exception pio syscall pagefault fork ctxsw exec tlb compute io)
pass=0
fail=0

check_output() { # label, rc, output, expected-workloads...
	local label=$1 rc=$2 out=$3
	shift 3
	local ok=1 why=""
	[ "$rc" = 1 ] || { ok=0; why+=" exit=$rc"; }
	grep -q '^DONE status=0$' <<<"$out" || { ok=0; why+=" no-DONE-0"; }
	if grep -q '^FAIL\|^PANIC' <<<"$out"; then ok=0; why+=" $(grep -m1 '^FAIL\|^PANIC' <<<"$out")"; fi
	for w in "$@"; do
		local line
		line=$(grep "^RESULT name=$w " <<<"$out")
		if [ -z "$line" ]; then ok=0; why+=" missing-$w"; continue; fi
		if [ "$line" = "RESULT name=$w skipped=1" ]; then
			[ "$w" = io ] || { ok=0; why+=" skipped-$w"; }
			[ -n "${EXPECT_IO:-}" ] && { ok=0; why+=" io-skipped"; }
			continue
		fi
		if [[ "$line" =~ ^RESULT\ name=$w\ iterations=([0-9]+)\ cycles=([0-9]+)\ cycles_per_iter=([0-9]+)$ ]]; then
			local n=${BASH_REMATCH[1]} c=${BASH_REMATCH[2]} x=${BASH_REMATCH[3]}
			if [ "$n" -le 0 ] || [ $((c / n)) != "$x" ]; then ok=0; why+=" bad-math-$w"; fi
		else
			ok=0
			why+=" malformed-$w"
		fi
	done
	if [ $ok = 1 ]; then
		pass=$((pass + 1))
		echo "PASS $label"
	else
		fail=$((fail + 1))
		echo "FAIL $label:$why"
		sed 's/^/    | /' <<<"$out" | tail -25
	fi
}

run_pc() { # workload
	local out rc
	out=$(timeout "$TIMEOUT" "$QEMU" -machine pc,accel=tcg -m 256M -kernel "$IMG32" -append "workload=$1" \
		-serial stdio -display none -device isa-debug-exit,iobase=0xf4,iosize=0x04 -no-reboot 2>&1)
	rc=$?
	if [ "$1" = all ]; then
		check_output "pc workload=all" $rc "$out" "${ALL[@]}"
		echo "$out" | grep '^RESULT'
	else
		check_output "pc workload=$1" $rc "$out" "$1"
	fi
	grep -q 'boot=multiboot' <<<"$out" || echo "  (warning: banner did not say boot=multiboot)"
}

if [ $# -gt 0 ]; then
	for w in "$@"; do run_pc "$w"; done
else
	for w in "${ALL[@]}" all; do run_pc "$w"; done

	# the failure paths must fail: exit status 3 (debug-exit value 1) and a PANIC / FAIL line
	for neg in crash:PANIC segv:FAIL; do
		w=${neg%%:*} want=${neg##*:}
		out=$(timeout "$TIMEOUT" "$QEMU" -machine pc,accel=tcg -m 256M -kernel "$IMG32" -append "workload=$w" \
			-serial stdio -display none -device isa-debug-exit,iobase=0xf4,iosize=0x04 -no-reboot 2>&1)
		rc=$?
		if [ $rc = 3 ] && grep -q "^$want" <<<"$out" && grep -q '^DONE status=1$' <<<"$out"; then
			pass=$((pass + 1)); echo "PASS pc workload=$w (expected failure: $(grep -m1 "^$want" <<<"$out"))"
		else
			fail=$((fail + 1)); echo "FAIL pc workload=$w: expected exit 3 and a $want line, got exit $rc"
		fi
	done

	# KPTI on TCG, which has no PCID (the flushing-CR3 path): every workload, and the page-table
	# split self-test (kernel data not present in the user table, entry text present)
	for args in "workload=all pti=on" "workload=kread pti=on"; do
		out=$(timeout "$TIMEOUT" "$QEMU" -machine pc,accel=tcg -m 256M -kernel "$IMG32" -append "$args" \
			-serial stdio -display none -device isa-debug-exit,iobase=0xf4,iosize=0x04 -no-reboot 2>&1)
		rc=$?
		if [ "$args" = "workload=all pti=on" ]; then
			check_output "pc $args" $rc "$out" "${ALL[@]}"
		else
			check_output "pc $args" $rc "$out"
			[ "$(grep -c ' ok$' <<<"$out")" = 2 ] || { fail=$((fail + 1)); echo "FAIL pc $args: KREAD lines not ok"; }
		fi
	done

	# direct 64-bit entry, through the test shim that implements the nestlab loader
	if make -s -C "$HERE" shim >/dev/null 2>&1; then
		out=$(timeout "$TIMEOUT" "$QEMU" -machine pc,accel=tcg -m 256M -kernel "$HERE/build/direct64-shim.elf" \
			-initrd "$IMG64 workload=all" -serial stdio -display none \
			-device isa-debug-exit,iobase=0xf4,iosize=0x04 -no-reboot 2>&1)
		rc=$?
		check_output "direct64 (shim) workload=all" $rc "$out" "${ALL[@]}"
		grep -q 'boot=direct64' <<<"$out" || echo "  (warning: banner did not say boot=direct64)"
	else
		echo "SKIP direct64 (cannot build the 32-bit shim)"
	fi

	# virtio-blk: QEMU microvm has modern virtio-mmio transports from 0xFEB00000 (0x200 apart);
	# bus=virtio-mmio-bus.0 puts the disk at exactly 0xFEB00000, where nestlab has it.
	# Run 1 polls the used ring (the default); run 2 takes the completion interrupt through the
	# 8259 (microvm wires transport 0 to IRQ 5 with ioapic2=off,acpi=off; nestlab uses blkirq=11).
	disk=$(mktemp)
	dd if=/dev/zero of="$disk" bs=1M count=4 2>/dev/null
	for mode in polled irq; do
		if [ $mode = polled ]; then mach=microvm,accel=tcg; extra=""; else
			mach=microvm,accel=tcg,pic=on,ioapic2=off,acpi=off; extra="blkirq=5"; fi
		out=$(timeout "$TIMEOUT" "$QEMU" -machine $mach -m 256M -kernel "$IMG32" -append "workload=io $extra" \
			-serial stdio -display none -device isa-debug-exit,iobase=0xf4,iosize=0x04 -no-reboot \
			-global virtio-mmio.force-legacy=false -drive id=d0,file="$disk",format=raw,if=none \
			-device virtio-blk-device,drive=d0,bus=virtio-mmio-bus.0 2>&1)
		rc=$?
		if grep -q 'virtio-blk: mmio=0xfeb00000' <<<"$out"; then
			EXPECT_IO=1 check_output "microvm virtio-blk ($mode) workload=io" $rc "$out" io
			if [ $mode = irq ] && ! grep -q 'blk_irqs=[1-9]' <<<"$out"; then
				fail=$((fail + 1)); echo "FAIL microvm virtio-blk (irq): no completion interrupt seen"
			fi
			grep '^RESULT' <<<"$out"
		else
			echo "SKIP microvm virtio-blk ($mode) (machine or device unavailable)"
		fi
	done
	rm -f "$disk"
fi
echo "qemu-check: $pass passed, $fail failed"
[ $fail = 0 ]
