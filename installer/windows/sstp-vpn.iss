; Inno Setup 6 script for SSTP VPN on Windows. Built, installed and uninstalled under Wine by
; installer/windows/wine-stage.sh (tests/windows); no real Windows machine has run it yet.
;
; Installs the PyInstaller folder that installer\windows\sstp-vpn.spec builds (dist\sstp-vpn\)
; into Program Files, with a Start-menu entry and an optional start at sign-in, and removes all of
; it again on uninstall. Built by `python installer\build.py windows`, which runs
;   iscc /DAppVersion=<version> /DBundleDir=<...\dist\sstp-vpn> /O<output> sstp-vpn.iss

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef BundleDir
  #define BundleDir "..\..\dist\sstp-vpn"
#endif
#define AppName "SSTP VPN"
#define TrayExe "sstp-vpn-tray.exe"
#define AutostartTask "SSTP VPN tray"

[Setup]
; Keep this AppId for every release: upgrades and the uninstaller find the installation by it.
AppId={{2FA5E140-3576-4595-8AD5-451203732197}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=SSTP VPN contributors
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
; Writing to Program Files and creating the sign-in task need administrator rights.
PrivilegesRequired=admin
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputBaseFilename=sstp-vpn-{#AppVersion}-setup
UninstallDisplayIcon={app}\{#TrayExe}
Compression=lzma2
SolidCompression=yes
WizardStyle=modern
; The tray app may be running: close it (Restart Manager) before files are replaced or removed.
CloseApplications=yes

[Tasks]
Name: "autostart"; Description: "Start {#AppName} when I sign in"; GroupDescription: "Additional options:"; Flags: unchecked

[Files]
; The whole bundle, wintun.dll and its LICENSE.txt included, byte for byte.
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; An upgrade replaces the whole bundle: files of the old version's libraries must not stay beside
; the new ones (seen under Wine: two cryptography-*.dist-info folders after an upgrade).
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#TrayExe}"
Name: "{group}\Uninstall {#AppName}"; Filename: "{uninstallexe}"

[Run]
; Windows does not start programs that need elevation from the Run registry key at sign-in, so
; the autostart is a scheduled task with the highest run level, for the user who installs.
Filename: "{sys}\schtasks.exe"; Parameters: "/Create /F /TN ""{#AutostartTask}"" /TR ""\""{app}\{#TrayExe}\"""" /SC ONLOGON /RL HIGHEST /IT"; Flags: runhidden; Tasks: autostart
Filename: "{app}\{#TrayExe}"; Description: "Start {#AppName} now"; Flags: nowait postinstall skipifsilent

[UninstallRun]
Filename: "{sys}\schtasks.exe"; Parameters: "/Delete /F /TN ""{#AutostartTask}"""; Flags: runhidden; RunOnceId: "DeleteAutostartTask"

[UninstallDelete]
; Network undo journals live in %ProgramData%\SSTP VPN while a session has changed routes or DNS.
; The folder goes only when empty: a journal left there is the record of how to undo a session.
Type: dirifempty; Name: "{commonappdata}\{#AppName}"
