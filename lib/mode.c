// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/* Mode names, as a VMM's command line spells them. */
#include <errno.h>
#include <string.h>

#include "pcihole.h"

static const char *const names[] = {
	[PCIHOLE_MODE_AUTO] = "auto",
	[PCIHOLE_MODE_PCI_HOLE] = "pci-hole",
	[PCIHOLE_MODE_READONLY] = "readonly",
	[PCIHOLE_MODE_MMIO] = "mmio",
};

const char *pcihole_mode_name(enum pcihole_mode mode)
{
	if ((unsigned int)mode >= sizeof(names) / sizeof(names[0]))
		return NULL;
	return names[mode];
}

int pcihole_mode_parse(const char *name)
{
	unsigned int i;

	if (!name)
		return -EINVAL;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i]))
			return (int)i;
	return -EINVAL;
}
