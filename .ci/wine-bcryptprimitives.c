/*
 * bcryptprimitives.dll for Wine 8, which has none. Go's runtime (1.22 and
 * later) loads it at start-up for ProcessPrng, its source of random bytes,
 * and stops without it ("fatal error: bcryptprimitives.dll not found").
 * ProcessPrng fills the buffer from advapi32's SystemFunction036
 * (RtlGenRandom), which Wine has; like the real one, it always succeeds.
 *
 * Built by .ci/wine with x86_64-w64-mingw32-gcc and copied into the Wine
 * prefix's system32. Not part of the library: test infrastructure only.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
	while (length > 0) {
		ULONG n = length > 0x40000000 ? 0x40000000 : (ULONG)length;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		length -= n;
	}
	return TRUE;
}
