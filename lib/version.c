// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/* The version of the library actually loaded, to compare with the header's. */
#include "pcihole.h"

uint32_t pcihole_version(void)
{
	return PCIHOLE_VERSION_CODE(PCIHOLE_VERSION_MAJOR, PCIHOLE_VERSION_MINOR,
				    PCIHOLE_VERSION_PATCH);
}
