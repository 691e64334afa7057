/* Wine-only stand-in for icuuc.dll, which Wine 8.0 lacks (Windows 10 1903+ has it): PySide6 >= 6.10's
   Qt6Core.dll imports these 20 ICU converter functions, so QtCore does not load under Wine without
   them. PySide6 6.9 does not import them, but its Qt crashes under Wine 8.0 at start (it asks WinRT
   for Windows.UI.ViewManagement.UISettings, which Wine gained in 8.13), so the bundle uses 6.11.
   Every stub returns 0/NULL: not a converter, only enough for QtCore to load; what runs under
   Wine with it (the tray, the CLI) is what tests/windows checks.
   Built with mingw by installer/windows/wine_build.py into the Wine prefix's system32 while
   PyInstaller runs there and while tests/windows runs; never part of the bundle (the build and
   tests/windows/test_install.py check). */
#include <stddef.h>

__declspec(dllexport) void *UCNV_TO_U_CALLBACK_SUBSTITUTE(void) { return NULL; }
__declspec(dllexport) void *UCNV_FROM_U_CALLBACK_SUBSTITUTE(void) { return NULL; }
__declspec(dllexport) void *ucnv_open(void) { return NULL; }
__declspec(dllexport) void *ucnv_close(void) { return NULL; }
__declspec(dllexport) void *ucnv_reset(void) { return NULL; }
__declspec(dllexport) void *ucnv_getMaxCharSize(void) { return NULL; }
__declspec(dllexport) void *ucnv_getName(void) { return NULL; }
__declspec(dllexport) void *ucnv_getToUCallBack(void) { return NULL; }
__declspec(dllexport) void *ucnv_getFromUCallBack(void) { return NULL; }
__declspec(dllexport) void *ucnv_setToUCallBack(void) { return NULL; }
__declspec(dllexport) void *ucnv_setFromUCallBack(void) { return NULL; }
__declspec(dllexport) void *ucnv_fromUnicode(void) { return NULL; }
__declspec(dllexport) void *ucnv_toUnicode(void) { return NULL; }
__declspec(dllexport) void *ucnv_countAvailable(void) { return NULL; }
__declspec(dllexport) void *ucnv_getAvailableName(void) { return NULL; }
__declspec(dllexport) void *ucnv_cbToUWriteUChars(void) { return NULL; }
__declspec(dllexport) void *ucnv_cbFromUWriteUChars(void) { return NULL; }
__declspec(dllexport) void *ucnv_toUCountPending(void) { return NULL; }
__declspec(dllexport) void *ucnv_fromUCountPending(void) { return NULL; }
__declspec(dllexport) void *ucnv_getStandardName(void) { return NULL; }
