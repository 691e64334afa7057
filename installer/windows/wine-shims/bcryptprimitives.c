/* Wine-only stand-in for bcryptprimitives.dll, which Wine 8.0 lacks (Windows 10 has it):
   cryptography >= 43 (the first with hazmat.decrepit, which client/core/mschapv2.py imports)
   imports bcryptprimitives.dll!ProcessPrng, so its _rust.pyd does not load under Wine without it.
   Built with mingw by installer/windows/wine_build.py into the Wine prefix's system32 while
   PyInstaller runs there and while tests/windows runs; never part of the bundle (the build and
   tests/windows/test_install.py check). ProcessPrng fills the buffer from the system's CSPRNG;
   here RtlGenRandom (advapi32!SystemFunction036) does the work. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
