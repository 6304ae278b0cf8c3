/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The built-in guest: it scans the ECAM windows the way Linux, firmware or a
 * brute-force prober does and leaves what it read in RAM for the VMM.
 *
 * 32-bit protected mode, flat segments, no paging, no interrupts.  The host
 * this was written on runs guest code through KVM's instruction emulator at
 * about 1 us per instruction, so the loops over holes are kept to six
 * instructions per hole: on hardware that is noise next to an exit, here it
 * is what the guest costs.
 *
 * For every function it finds, the linux and firmware scans make the config
 * accesses their models make, in the same order, with the same widths (an
 * exit is one access, so the counts are the models' own):
 *
 *   linux (6.12: pci_scan_device, pci_setup_device, pci_init_capabilities,
 *   for a type-0 PCIe endpoint without quirks)
 *     dword 0x00 (found it); byte 0x0e (pci_hdr_type); find EXP (below),
 *     then word EXP+2, dword EXP+4 (set_pcie_port_type); dword 0x08
 *     (pci_class); for PCIe: dword 0x100, dword 0x00, dword 0x100
 *     (pci_cfg_space_size_ext, pci_ext_cfg_is_aliased); word 0x04, write it
 *     with INTx disable flipped, read it, write it back (pci_intx_mask_broken);
 *     byte 0x3d and, if a pin, byte 0x3c (pci_read_irq); BAR0-5 and the ROM
 *     by __pci_read_base (below); words 0x2c, 0x2e (pci_subsystem_ids); find
 *     EA, find MSI + word MSI+2, find MSI-X, find PM + word PM+2 + word 0x06
 *     (pci_ea_init, pci_msi_init, pci_msix_init, pci_pm_init).
 *     find = pci_find_capability: word 0x06, byte 0x34, then one word (id,
 *     next) per capability until the one sought or the end.
 *     __pci_read_base: word 0x04 and, if decoding is on, a word write
 *     turning it off; dword read l, write l | mask (~0; ROM ~0x7ff), read sz,
 *     write l; for a 64-bit BAR the same four for the upper half; the
 *     command written back if it was changed.
 *   firmware (SeaBIOS: pci_next, pci_probe_devices, pci_bios_check_devices,
 *   pci_bios_init_device)
 *     word 0x00 (found it); dword 0x00, dword 0x08, byte 0x0e; find EXP with
 *     byte reads (status word, 0x34, then id byte, next byte per entry);
 *     pci_bios_get_bar for BAR0-5 and the ROM: dword read old, write ~0 (ROM:
 *     the mask), read, write old, and for a 64-bit BAR the same for the upper
 *     half; byte 0x3d and, if a pin, a byte write of the interrupt line;
 *     word 0x04 read and written with I/O | memory | SERR# set; after a
 *     function 0, byte 0x0e again (pci_next: multifunction?).
 *   brute: dword 0x00 of every page; a found one: dword 0x00 and 0x0c again.
 *
 * Register use in a scan: eax = config page being read, ecx = pages left in
 * this window, ebx = window table pointer, esi = windows left, edi = next
 * result entry, ebp/edx = scratch.  The per-function routines save ebx,
 * ecx and esi and use them freely.
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
	"	mov dword ptr [" S(G_R_COUNT) "], 0\n"
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
	"	call .Lg_lx_function\n"
	"	test edx, 0x80\n"	/* header type bit 7: multifunction */
	"	jz .Lg_lx_next\n"
	"	push eax\n"
	"	push ecx\n"
	"	mov ecx, 7\n"
	".Lg_lx_fn:\n"
	"	add eax, 0x1000\n"
	"	mov ebp, dword ptr [eax]\n"
	"	cmp bp, 0xffff\n"
	"	je .Lg_lx_fn_next\n"
	"	call .Lg_lx_function\n"
	".Lg_lx_fn_next:\n"
	"	dec ecx\n"
	"	jnz .Lg_lx_fn\n"
	"	pop ecx\n"
	"	pop eax\n"
	"	jmp .Lg_lx_next\n"

	/*
	 * firmware: SeaBIOS's pci_next.  16-bit vendor reads, the same function
	 * skipping, decided by a header-type read after each function 0 found.
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
	"	movzx edx, byte ptr [eax + 0x0e]\n"
	"	test edx, 0x80\n"
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
	"	call .Lg_clear\n"
	"	mov dword ptr [edi + " S(E_GPA) "], eax\n"
	"	mov ebp, dword ptr [eax]\n"
	"	mov dword ptr [edi + " S(E_ID) "], ebp\n"
	"	mov edx, dword ptr [eax + 0x0c]\n"
	"	shr edx, 16\n"
	"	and edx, 0xff\n"
	"	mov dword ptr [edi + " S(E_HDR) "], edx\n"
	"	call .Lg_next_entry\n"
	"	jmp .Lg_br_next\n"

	".Lg_seg_next:\n"
	"	add ebx, 8\n"
	"	dec esi\n"
	"	jmp .Lg_seg\n"

	/* Let the VMM look at the list. */
	".Lg_done:\n"
	"	mov dx, " S(PORT_END) "\n"
	"	out dx, eax\n"
	"	dec dword ptr [" S(G_P_REPEAT) "]\n"
	"	jnz .Lg_scan\n"
	"	hlt\n"
	"	jmp .Lg_done\n"

	/*
	 * Linux's setup of the function at eax, whose dword 0x00 is in ebp.
	 * Returns the header type byte in edx; clobbers ebp.
	 */
	".Lg_lx_function:\n"
	"	push ebx\n"
	"	push ecx\n"
	"	push esi\n"
	"	call .Lg_clear\n"
	"	mov dword ptr [edi + " S(E_GPA) "], eax\n"
	"	mov dword ptr [edi + " S(E_ID) "], ebp\n"
	"	movzx edx, byte ptr [eax + 0x0e]\n"		/* pci_hdr_type */
	"	mov dword ptr [edi + " S(E_HDR) "], edx\n"
	"	push edx\n"
	"	mov ecx, 0x10\n"				/* set_pcie_port_type */
	"	call .Lg_lx_cap\n"
	"	mov byte ptr [edi + " S(E_CAPS) " + " S(CAPQ_EXP) "], dl\n"
	"	test edx, edx\n"
	"	jz .Lg_lx_noexp\n"
	"	movzx ebp, word ptr [eax + edx + 2]\n"
	"	mov dword ptr [edi + " S(E_CAPINFO) "], ebp\n"
	"	mov ebp, dword ptr [eax + edx + 4]\n"
	"	mov dword ptr [edi + " S(E_CAPINFO) " + 4], ebp\n"
	".Lg_lx_noexp:\n"
	"	mov ebp, dword ptr [eax + 0x08]\n"		/* pci_class */
	"	mov dword ptr [edi + " S(E_CLASS) "], ebp\n"
	"	test edx, edx\n"				/* pci_cfg_space_size_ext */
	"	jz .Lg_lx_noext\n"
	"	mov ebp, dword ptr [eax + 0x100]\n"
	"	mov dword ptr [edi + " S(E_EXT) "], ebp\n"
	"	mov ebp, dword ptr [eax]\n"			/* pci_ext_cfg_is_aliased */
	"	mov ebp, dword ptr [eax + 0x100]\n"
	".Lg_lx_noext:\n"
	"	movzx edx, word ptr [eax + 4]\n"		/* pci_intx_mask_broken */
	"	mov dword ptr [edi + " S(E_CMD) "], edx\n"
	"	mov ebp, edx\n"
	"	xor ebp, 0x400\n"
	"	mov word ptr [eax + 4], bp\n"
	"	movzx ebp, word ptr [eax + 4]\n"
	"	mov dword ptr [edi + " S(E_CMD_TOGGLED) "], ebp\n"
	"	mov word ptr [eax + 4], dx\n"
	"	movzx edx, byte ptr [eax + 0x3d]\n"		/* pci_read_irq */
	"	test edx, edx\n"
	"	jz .Lg_lx_nopin\n"
	"	movzx ebp, byte ptr [eax + 0x3c]\n"
	"	shl ebp, 8\n"
	"	or edx, ebp\n"
	".Lg_lx_nopin:\n"
	"	mov dword ptr [edi + " S(E_IRQ) "], edx\n"
	"	mov ebx, 0x10\n"				/* pci_read_bases(dev, 6, ROM) */
	"	mov ecx, 0xffffffff\n"
	".Lg_lx_bars:\n"
	"	call .Lg_lx_base\n"
	"	cmp ebx, 0x28\n"
	"	jb .Lg_lx_bars\n"
	"	mov ebx, 0x30\n"
	"	mov ecx, " S(ROM_MASK) "\n"
	"	call .Lg_lx_base\n"
	"	movzx edx, word ptr [eax + 0x2c]\n"		/* pci_subsystem_ids */
	"	movzx ebp, word ptr [eax + 0x2e]\n"
	"	shl ebp, 16\n"
	"	or edx, ebp\n"
	"	mov dword ptr [edi + " S(E_SUBSYS) "], edx\n"
	"	mov ecx, 0x14\n"				/* pci_ea_init */
	"	call .Lg_lx_cap\n"
	"	mov byte ptr [edi + " S(E_CAPS) " + " S(CAPQ_EA) "], dl\n"
	"	mov ecx, 0x05\n"				/* pci_msi_init */
	"	call .Lg_lx_cap\n"
	"	mov byte ptr [edi + " S(E_CAPS) " + " S(CAPQ_MSI) "], dl\n"
	"	test edx, edx\n"
	"	jz .Lg_lx_nomsi\n"
	"	movzx ebp, word ptr [eax + edx + 2]\n"
	"	mov dword ptr [edi + " S(E_CAPINFO) " + 8], ebp\n"
	".Lg_lx_nomsi:\n"
	"	mov ecx, 0x11\n"				/* pci_msix_init */
	"	call .Lg_lx_cap\n"
	"	mov byte ptr [edi + " S(E_CAPS) " + " S(CAPQ_MSIX) "], dl\n"
	"	mov ecx, 0x01\n"				/* pci_pm_init */
	"	call .Lg_lx_cap\n"
	"	mov byte ptr [edi + " S(E_CAPS) " + " S(CAPQ_PM) "], dl\n"
	"	test edx, edx\n"
	"	jz .Lg_lx_nopm\n"
	"	movzx ebp, word ptr [eax + edx + 2]\n"
	"	mov dword ptr [edi + " S(E_CAPINFO) " + 12], ebp\n"
	"	movzx ebp, word ptr [eax + 6]\n"
	".Lg_lx_nopm:\n"
	"	call .Lg_next_entry\n"
	"	pop edx\n"
	"	pop esi\n"
	"	pop ecx\n"
	"	pop ebx\n"
	"	ret\n"

	/*
	 * pci_find_capability(eax, id ecx): the position in edx, or 0.
	 * Clobbers ebx, ebp, esi.
	 */
	".Lg_lx_cap:\n"
	"	xor edx, edx\n"
	"	movzx ebp, word ptr [eax + 6]\n"
	"	test ebp, " S(STATUS_CAP_LIST) "\n"
	"	jz .Lg_lx_cap_ret\n"
	"	movzx edx, byte ptr [eax + 0x34]\n"
	"	mov esi, 48\n"					/* PCI_FIND_CAP_TTL */
	".Lg_lx_cap_loop:\n"
	"	cmp edx, 0x40\n"
	"	jb .Lg_lx_cap_none\n"
	"	and edx, 0xfc\n"
	"	movzx ebx, word ptr [eax + edx]\n"
	"	cmp bl, 0xff\n"
	"	je .Lg_lx_cap_none\n"
	"	cmp bl, cl\n"
	"	je .Lg_lx_cap_ret\n"
	"	movzx edx, bh\n"
	"	dec esi\n"
	"	jnz .Lg_lx_cap_loop\n"
	".Lg_lx_cap_none:\n"
	"	xor edx, edx\n"
	".Lg_lx_cap_ret:\n"
	"	ret\n"

	/*
	 * __pci_read_base(eax, register ebx, mask ecx): the read-back goes to
	 * the entry's sizes[]; ebx moves past the BAR (both halves of a
	 * 64-bit one).  Clobbers edx, ebp, esi.
	 */
	".Lg_lx_base:\n"
	"	movzx esi, word ptr [eax + 4]\n"
	"	test esi, 3\n"					/* PCI_COMMAND_DECODE_ENABLE */
	"	jz .Lg_lx_base_off\n"
	"	mov ebp, esi\n"
	"	and ebp, 0xfffc\n"
	"	mov word ptr [eax + 4], bp\n"
	".Lg_lx_base_off:\n"
	"	mov edx, dword ptr [eax + ebx]\n"
	"	mov ebp, edx\n"
	"	or ebp, ecx\n"
	"	mov dword ptr [eax + ebx], ebp\n"
	"	mov ebp, dword ptr [eax + ebx]\n"
	"	mov dword ptr [eax + ebx], edx\n"
	"	mov dword ptr [edi + ebx + " S(E_SIZES) " - 0x10], ebp\n"
	"	cmp ecx, 0xffffffff\n"				/* a BAR, not the ROM */
	"	jne .Lg_lx_base_done\n"
	"	and edx, 7\n"					/* memory, 64-bit */
	"	cmp edx, 4\n"
	"	jne .Lg_lx_base_done\n"
	"	add ebx, 4\n"
	"	mov edx, dword ptr [eax + ebx]\n"
	"	mov dword ptr [eax + ebx], 0xffffffff\n"
	"	mov ebp, dword ptr [eax + ebx]\n"
	"	mov dword ptr [eax + ebx], edx\n"
	"	mov dword ptr [edi + ebx + " S(E_SIZES) " - 0x10], ebp\n"
	".Lg_lx_base_done:\n"
	"	add ebx, 4\n"
	"	test esi, 3\n"
	"	jz .Lg_lx_base_ret\n"
	"	mov word ptr [eax + 4], si\n"
	".Lg_lx_base_ret:\n"
	"	ret\n"

	/* SeaBIOS's probe, BAR sizing and init of the function at eax.  Clobbers edx, ebp. */
	".Lg_fw_function:\n"
	"	push ebx\n"
	"	push ecx\n"
	"	push esi\n"
	"	call .Lg_clear\n"
	"	mov dword ptr [edi + " S(E_GPA) "], eax\n"
	"	mov ebp, dword ptr [eax]\n"			/* pci_probe_devices */
	"	mov dword ptr [edi + " S(E_ID) "], ebp\n"
	"	mov ebp, dword ptr [eax + 0x08]\n"
	"	mov dword ptr [edi + " S(E_CLASS) "], ebp\n"
	"	movzx edx, byte ptr [eax + 0x0e]\n"
	"	mov dword ptr [edi + " S(E_HDR) "], edx\n"
	"	xor edx, edx\n"					/* pci_find_capability(EXP) */
	"	movzx ebp, word ptr [eax + 6]\n"
	"	test ebp, " S(STATUS_CAP_LIST) "\n"
	"	jz .Lg_fw_cap_done\n"
	"	movzx edx, byte ptr [eax + 0x34]\n"
	"	mov ecx, 256\n"
	".Lg_fw_cap:\n"
	"	test edx, edx\n"
	"	jz .Lg_fw_cap_done\n"
	"	cmp byte ptr [eax + edx], 0x10\n"
	"	je .Lg_fw_cap_done\n"
	"	movzx edx, byte ptr [eax + edx + 1]\n"
	"	dec ecx\n"
	"	jnz .Lg_fw_cap\n"
	"	xor edx, edx\n"
	".Lg_fw_cap_done:\n"
	"	mov byte ptr [edi + " S(E_CAPS) " + " S(CAPQ_EXP) "], dl\n"
	"	mov ebx, 0x10\n"				/* pci_bios_get_bar, BAR0-5 */
	".Lg_fw_bar:\n"
	"	mov edx, dword ptr [eax + ebx]\n"
	"	mov dword ptr [eax + ebx], 0xffffffff\n"
	"	mov ebp, dword ptr [eax + ebx]\n"
	"	mov dword ptr [eax + ebx], edx\n"
	"	mov dword ptr [edi + ebx + " S(E_SIZES) " - 0x10], ebp\n"
	"	test edx, 1\n"					/* I/O */
	"	jnz .Lg_fw_bar_next\n"
	"	and edx, 6\n"					/* PCI_BASE_ADDRESS_MEM_TYPE_64 */
	"	cmp edx, 4\n"
	"	jne .Lg_fw_bar_next\n"
	"	add ebx, 4\n"
	"	mov edx, dword ptr [eax + ebx]\n"
	"	mov dword ptr [eax + ebx], 0xffffffff\n"
	"	mov ebp, dword ptr [eax + ebx]\n"
	"	mov dword ptr [eax + ebx], edx\n"
	"	mov dword ptr [edi + ebx + " S(E_SIZES) " - 0x10], ebp\n"
	".Lg_fw_bar_next:\n"
	"	add ebx, 4\n"
	"	cmp ebx, 0x28\n"
	"	jb .Lg_fw_bar\n"
	"	mov edx, dword ptr [eax + 0x30]\n"		/* the ROM: the mask alone */
	"	mov dword ptr [eax + 0x30], " S(ROM_MASK) "\n"
	"	mov ebp, dword ptr [eax + 0x30]\n"
	"	mov dword ptr [eax + 0x30], edx\n"
	"	mov dword ptr [edi + " S(E_SIZES) " + 0x20], ebp\n"
	"	movzx edx, byte ptr [eax + 0x3d]\n"		/* pci_bios_init_device */
	"	test edx, edx\n"
	"	jz .Lg_fw_nopin\n"
	"	mov ecx, eax\n"					/* 10 + ((slot + pin - 1) & 3) */
	"	shr ecx, 15\n"
	"	and ecx, 31\n"
	"	lea ecx, [ecx + edx - 1]\n"
	"	and ecx, 3\n"
	"	add ecx, 10\n"
	"	mov byte ptr [eax + 0x3c], cl\n"
	"	shl ecx, 8\n"
	"	or edx, ecx\n"
	".Lg_fw_nopin:\n"
	"	mov dword ptr [edi + " S(E_IRQ) "], edx\n"
	"	movzx edx, word ptr [eax + 4]\n"		/* pci_config_maskw(COMMAND) */
	"	mov dword ptr [edi + " S(E_CMD) "], edx\n"
	"	or edx, " S(CMD_FW_ENABLE) "\n"
	"	mov word ptr [eax + 4], dx\n"
	"	call .Lg_next_entry\n"
	"	pop esi\n"
	"	pop ecx\n"
	"	pop ebx\n"
	"	ret\n"

	/* Zero the entry at edi: a scan leaves what it does not read 0. */
	".Lg_clear:\n"
	"	push ecx\n"
	"	push edx\n"
	"	xor edx, edx\n"
	"	mov ecx, " S(E_SIZE) " / 4\n"
	".Lg_clear_loop:\n"
	"	mov dword ptr [edi + ecx * 4 - 4], edx\n"
	"	dec ecx\n"
	"	jnz .Lg_clear_loop\n"
	"	pop edx\n"
	"	pop ecx\n"
	"	ret\n"

	/*
	 * The entry at edi is complete: count it and move on.  A full result
	 * area keeps overwriting its last entry and raises G_R_FULL.
	 */
	".Lg_next_entry:\n"
	"	cmp edi, dword ptr [" S(G_P_END) "]\n"
	"	jae .Lg_next_full\n"
	"	add edi, " S(E_SIZE) "\n"
	"	inc dword ptr [" S(G_R_COUNT) "]\n"
	"	ret\n"
	".Lg_next_full:\n"
	"	mov dword ptr [" S(G_R_FULL) "], 1\n"
	"	ret\n"
	"pcihole_guest_end:\n"
	".code64\n"
	".att_syntax prefix\n"
	".popsection\n");

/* The guest, its parameters and its window table, into guest RAM. */
void guest_load(uint8_t *ram, const struct options *o)
{
	size_t size = (size_t)(pcihole_guest_end - pcihole_guest);

	/* The parameters follow the code. */
	if (size > G_PARAM - G_CODE)
		die(EXIT_FAIL, "built-in guest is %zu bytes, more than the %u it has", size,
		    G_PARAM - G_CODE);
	memcpy(ram + G_CODE, pcihole_guest, size);
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
