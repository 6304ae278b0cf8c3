/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The built-in guest: it scans the ECAM windows the way Linux, firmware or a
 * brute-force prober does and leaves what it found in RAM for the VMM.
 *
 * 32-bit protected mode, flat segments, no paging, no interrupts.  The host
 * this was written on runs guest code through KVM's instruction emulator at
 * about 1 us per instruction, so the scan loops are kept to six
 * instructions per hole: on hardware that is noise next to an exit, here it
 * is what the guest costs.
 *
 * Register use in a scan: eax = config page being read, ecx = pages left in
 * this window, ebx = window table pointer, esi = windows left, edi = next
 * result entry, ebp/edx = scratch.
 *
 * Written in assembly (the compiler's own assembler, so there is no extra
 * tool and no hand-encoded bytes to get wrong); it only uses relative jumps
 * and absolute constants, so it runs wherever it is copied (G_CODE).
 */
#include "launch.h"

#define S_(x) #x
#define S(x) S_(x)

__asm__(
	".pushsection .rodata.pcihole_guest, \"a\"\n"
	".intel_syntax noprefix\n"
	".code32\n"
	"pcihole_guest:\n"
	"	mov esp, " S(G_STACK_TOP) "\n"
	"	mov dx, " S(PORT_CALIBRATE) "\n"
	"	out dx, al\n"
	"	mov ebx, " S(CAL_ROUNDS) "\n"
	".Lg_cal_round:\n"
	"	mov ecx, " S(CAL_LOOPS) "\n"
	".Lg_cal:\n"
	"	dec ecx\n"
	"	jnz .Lg_cal\n"
	"	out dx, al\n"
	"	dec ebx\n"
	"	jnz .Lg_cal_round\n"
	".Lg_scan:\n"
	"	mov dx, " S(PORT_BEGIN) "\n"
	"	out dx, al\n"
	"	mov dword ptr [" S(G_R_FULL) "], 0\n"
	"	mov edi, " S(G_R_ENTRIES) "\n"
	"	mov ebx, " S(G_P_SEGS) "\n"
	"	mov esi, dword ptr [" S(G_P_NSEGS) "]\n"
	".Lg_seg:\n"
	"	test esi, esi\n"
	"	jz .Lg_done\n"
	"	mov eax, dword ptr [ebx]\n"
	"	mov ecx, dword ptr [ebx + 4]\n"
	"	mov edx, dword ptr [" S(G_P_KIND) "]\n"
	"	cmp edx, " S(SCAN_BRUTE) "\n"
	"	je .Lg_brute\n"
	"	cmp edx, " S(SCAN_FIRMWARE) "\n"
	"	je .Lg_fw\n"

	/*
	 * linux: pci_scan_slot / pcibios_fixup_peer_bridges.  One 32-bit
	 * vendor-ID read at function 0 of devices 0-31 of every bus; functions
	 * 1-7 only behind a multifunction function 0.
	 */
	"	shl ecx, 5\n"
	".Lg_lx:\n"
	"	mov ebp, dword ptr [eax]\n"
	"	cmp bp, 0xffff\n"
	"	jne .Lg_lx_found\n"
	".Lg_lx_next:\n"
	"	add eax, 0x8000\n"
	"	dec ecx\n"
	"	jnz .Lg_lx\n"
	"	jmp .Lg_seg_next\n"
	".Lg_lx_found:\n"
	"	call .Lg_record\n"
	"	test edx, 0x800000\n"	/* header type bit 7: multifunction */
	"	jz .Lg_lx_next\n"
	"	push eax\n"
	"	push ecx\n"
	"	mov ecx, 7\n"
	".Lg_lx_fn:\n"
	"	add eax, 0x1000\n"
	"	mov ebp, dword ptr [eax]\n"
	"	cmp bp, 0xffff\n"
	"	je .Lg_lx_fn_next\n"
	"	call .Lg_record\n"
	".Lg_lx_fn_next:\n"
	"	dec ecx\n"
	"	jnz .Lg_lx_fn\n"
	"	pop ecx\n"
	"	pop eax\n"
	"	jmp .Lg_lx_next\n"

	/*
	 * firmware: SeaBIOS/OVMF.  16-bit vendor reads, the same function
	 * skipping, and every BAR of a found function sized the classic way:
	 * save, write all-ones, read the mask back, restore.
	 */
	".Lg_fw:\n"
	"	shl ecx, 5\n"
	".Lg_fw_loop:\n"
	"	movzx ebp, word ptr [eax]\n"
	"	cmp bp, 0xffff\n"
	"	jne .Lg_fw_found\n"
	".Lg_fw_next:\n"
	"	add eax, 0x8000\n"
	"	dec ecx\n"
	"	jnz .Lg_fw_loop\n"
	"	jmp .Lg_seg_next\n"
	".Lg_fw_found:\n"
	"	call .Lg_fw_function\n"
	"	test edx, 0x800000\n"
	"	jz .Lg_fw_next\n"
	"	push eax\n"
	"	push ecx\n"
	"	mov ecx, 7\n"
	".Lg_fw_fn:\n"
	"	add eax, 0x1000\n"
	"	movzx ebp, word ptr [eax]\n"
	"	cmp bp, 0xffff\n"
	"	je .Lg_fw_fn_next\n"
	"	call .Lg_fw_function\n"
	".Lg_fw_fn_next:\n"
	"	dec ecx\n"
	"	jnz .Lg_fw_fn\n"
	"	pop ecx\n"
	"	pop eax\n"
	"	jmp .Lg_fw_next\n"
	".Lg_fw_function:\n"
	"	push ecx\n"
	"	push ebx\n"
	"	lea ebx, [eax + 0x10]\n"
	"	mov ecx, 6\n"
	".Lg_fw_bar:\n"
	"	mov edx, dword ptr [ebx]\n"
	"	mov dword ptr [ebx], 0xffffffff\n"
	"	mov ebp, dword ptr [ebx]\n"
	"	mov dword ptr [ebx], edx\n"
	"	cmp ecx, 6\n"
	"	jne .Lg_fw_bar_next\n"
	"	mov dword ptr [" S(G_P_BAR0) "], ebp\n"
	".Lg_fw_bar_next:\n"
	"	add ebx, 4\n"
	"	dec ecx\n"
	"	jnz .Lg_fw_bar\n"
	"	pop ebx\n"
	"	pop ecx\n"
	"	jmp .Lg_record\n"	/* tail call */

	/* brute: a 32-bit read of every function page, no skipping. */
	".Lg_brute:\n"
	"	shl ecx, 8\n"
	".Lg_br:\n"
	"	mov ebp, dword ptr [eax]\n"
	"	cmp bp, 0xffff\n"
	"	jne .Lg_br_found\n"
	".Lg_br_next:\n"
	"	add eax, 0x1000\n"
	"	dec ecx\n"
	"	jnz .Lg_br\n"
	"	jmp .Lg_seg_next\n"
	".Lg_br_found:\n"
	"	call .Lg_record\n"
	"	jmp .Lg_br_next\n"

	".Lg_seg_next:\n"
	"	add ebx, 8\n"
	"	dec esi\n"
	"	jmp .Lg_seg\n"

	/* Report the count and let the VMM look at the list. */
	".Lg_done:\n"
	"	mov eax, edi\n"
	"	sub eax, " S(G_R_ENTRIES) "\n"
	"	shr eax, 4\n"
	"	mov dword ptr [" S(G_R_COUNT) "], eax\n"
	"	mov dx, " S(PORT_END) "\n"
	"	out dx, eax\n"
	"	dec dword ptr [" S(G_P_REPEAT) "]\n"
	"	jnz .Lg_scan\n"
	"	hlt\n"
	"	jmp .Lg_done\n"

	/*
	 * Record the function at eax: its id and header dwords (two more
	 * config reads, as every real scan does next) and the BAR0 scratch.
	 * Returns the header dword in edx; clobbers ebp.  A full result area
	 * keeps overwriting its last entry and raises G_R_FULL.
	 */
	".Lg_record:\n"
	"	mov ebp, dword ptr [eax]\n"
	"	mov edx, dword ptr [eax + 0x0c]\n"
	"	mov dword ptr [edi], eax\n"
	"	mov dword ptr [edi + 4], ebp\n"
	"	mov dword ptr [edi + 8], edx\n"
	"	mov ebp, dword ptr [" S(G_P_BAR0) "]\n"
	"	mov dword ptr [edi + 12], ebp\n"
	"	cmp edi, dword ptr [" S(G_P_END) "]\n"
	"	jae .Lg_record_full\n"
	"	add edi, 16\n"
	"	ret\n"
	".Lg_record_full:\n"
	"	mov dword ptr [" S(G_R_FULL) "], 1\n"
	"	ret\n"
	"pcihole_guest_end:\n"
	".code64\n"
	".att_syntax prefix\n"
	".popsection\n");

/* The guest, its parameters and its window table, into guest RAM. */
void guest_load(uint8_t *ram, const struct options *o)
{
	memcpy(ram + G_CODE, pcihole_guest, (size_t)(pcihole_guest_end - pcihole_guest));
	put32(ram + G_P_KIND, o->scan);
	put32(ram + G_P_REPEAT, o->repeat);
	put32(ram + G_P_NSEGS, (uint32_t)o->nr_segs);
	put32(ram + G_P_END, (uint32_t)(G_R_ENTRIES + GUEST_MAX_ENTRIES * sizeof(struct guest_entry)));
	for (size_t i = 0; i < o->nr_segs; i++) {
		struct guest_seg gs = {
			.base = (uint32_t)o->segs[i].base,
			.buses = (uint32_t)(o->segs[i].bus_end - o->segs[i].bus_start + 1),
		};

		memcpy(ram + G_P_SEGS + i * sizeof(gs), &gs, sizeof(gs));
	}
}
