; Inno Setup 6 script for SSTP VPN on Windows. Built, installed and uninstalled under Wine by
; installer/windows/wine-stage.sh (tests/windows); no real Windows machine has run it yet.
;
; Installs the PyInstaller folder that installer\windows\sstp-vpn.spec builds (dist\sstp-vpn\)
; into Program Files, registers sstp-vpn-helper.exe as the LocalSystem service SstpVpnHelper (it
; owns the Wintun adapter, routes and DNS; the tray app and the CLI run unelevated and ask it
; through \\.\pipe\sstp-vpn-helper), adds a Start-menu entry and an optional start at sign-in, and
; removes all of it again on uninstall. Built by `python installer\build.py windows`, which runs
;   iscc /DAppVersion=<version> /DBundleDir=<...\dist\sstp-vpn> /O<output> sstp-vpn.iss

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef BundleDir
  #define BundleDir "..\..\dist\sstp-vpn"
#endif
#define AppName "SSTP VPN"
#define TrayExe "sstp-vpn-tray.exe"
#define HelperExe "sstp-vpn-helper.exe"
#define ServiceName "SstpVpnHelper"
#define ServiceDisplayName "SSTP VPN network service"
; The autostart value under HKLM\Software\Microsoft\Windows\CurrentVersion\Run.
#define AutostartValue "SSTP VPN"

[Setup]
; Keep this AppId for every release: upgrades and the uninstaller find the installation by it.
AppId={{2FA5E140-3576-4595-8AD5-451203732197}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=SSTP VPN contributors
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
; Writing to Program Files, HKLM and the service database needs administrator rights (the installer
; is the only part that asks for them: every executable of the bundle runs as invoked).
PrivilegesRequired=admin
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputBaseFilename=sstp-vpn-{#AppVersion}-setup
UninstallDisplayIcon={app}\{#TrayExe}
Compression=lzma2
SolidCompression=yes
WizardStyle=modern
; The tray app may be running: close it (Restart Manager) before files are replaced or removed.
; The service is stopped and deleted by PrepareToInstall ([Code]) before that.
CloseApplications=yes

[Tasks]
Name: "autostart"; Description: "Start {#AppName} when a user signs in"; GroupDescription: "Additional options:"; Flags: unchecked

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

[Registry]
; Start at sign-in, for every user: the tray is unelevated, so the machine-wide Run key starts it
; (Windows skips Run entries that ask for elevation). An upgrade without the task removes the value.
Root: HKLM; Subkey: "Software\Microsoft\Windows\CurrentVersion\Run"; ValueType: string; ValueName: "{#AutostartValue}"; ValueData: """{app}\{#TrayExe}"""; Flags: uninsdeletevalue; Tasks: autostart
Root: HKLM; Subkey: "Software\Microsoft\Windows\CurrentVersion\Run"; ValueType: none; ValueName: "{#AutostartValue}"; Flags: deletevalue; Tasks: not autostart

[Run]
; The service, once its files are in place (PrepareToInstall has removed an older one). binPath is
; quoted inside the value ("\"...\"" on sc's command line): an unquoted path with spaces would let
; Windows try C:\Program.exe first, a classic privilege-escalation hole.
Filename: "{sys}\sc.exe"; Parameters: "create {#ServiceName} binPath= ""\""{app}\{#HelperExe}\"""" start= auto obj= LocalSystem DisplayName= ""{#ServiceDisplayName}"""; Flags: runhidden; StatusMsg: "Installing the {#ServiceDisplayName}..."
Filename: "{sys}\sc.exe"; Parameters: "description {#ServiceName} ""The network side of SSTP VPN connections for the SSTP VPN app and command line: the Wintun tunnel adapter, its routes and its DNS settings."""; Flags: runhidden
; Restarted 5 s after a crash, three times; the count starts again after a day without one.
; (Wine 8.0 answers this with success but does not store it: services.exe has a FIXME there.)
Filename: "{sys}\sc.exe"; Parameters: "failure {#ServiceName} reset= 86400 actions= restart/5000/restart/5000/restart/5000"; Flags: runhidden
Filename: "{sys}\sc.exe"; Parameters: "start {#ServiceName}"; Flags: runhidden; StatusMsg: "Starting the {#ServiceDisplayName}..."
; Started as the user who ran Setup, not with Setup's administrator rights.
Filename: "{app}\{#TrayExe}"; Description: "Start {#AppName} now"; Flags: nowait postinstall skipifsilent runasoriginaluser

[UninstallDelete]
; Network undo journals live in %ProgramData%\SSTP VPN (the service's in its folder "service", beside
; its log) while a session has changed routes or DNS. The service's log and the journal's lock file
; go; the folders go only when empty: a journal left there is the record of how to undo a session.
Type: files; Name: "{commonappdata}\{#AppName}\service\service.log*"
Type: files; Name: "{commonappdata}\{#AppName}\service\network-journal.json.lock"
Type: dirifempty; Name: "{commonappdata}\{#AppName}\service"
Type: dirifempty; Name: "{commonappdata}\{#AppName}"

[Code]
{ The service SstpVpnHelper is stopped and deleted before an upgrade or a reinstall replaces its
  files (PrepareToInstall) and before the uninstaller removes them (CurUninstallStepChanged). Through
  the service API rather than sc.exe: `sc stop` returns before the service has stopped, and a
  service that is only marked for deletion makes the next `sc create` fail. }
const
  SC_MANAGER_CONNECT = $0001;
  SERVICE_QUERY_STATUS = $0004;
  SERVICE_STOP = $0020;
  DELETE_ACCESS = $00010000;
  SYNCHRONIZE_ACCESS = $00100000;
  SERVICE_CONTROL_STOP = 1;
  SERVICE_STOPPED = 1;
  SERVICE_STOP_PENDING = 3;
  SC_STATUS_PROCESS_INFO = 0;
  SERVICE_STATUS_PROCESS_SIZE = 36;
  ERROR_SERVICE_DOES_NOT_EXIST = 1060;
  ERROR_SERVICE_MARKED_FOR_DELETE = 1072;
  STOP_TIMEOUT_MS = 30000;
  GONE_TIMEOUT_MS = 10000;
  POLL_MS = 250;

type
  TServiceStatus = record
    ServiceType, CurrentState, ControlsAccepted, Win32ExitCode, ServiceSpecificExitCode, CheckPoint, WaitHint: Cardinal;
  end;
  TServiceStatusProcess = record
    ServiceType, CurrentState, ControlsAccepted, Win32ExitCode, ServiceSpecificExitCode, CheckPoint, WaitHint, ProcessId, ServiceFlags: Cardinal;
  end;

function OpenSCManager(MachineName, DatabaseName: String; DesiredAccess: Cardinal): THandle;
  external 'OpenSCManagerW@advapi32.dll stdcall';
function OpenService(Manager: THandle; ServiceName: String; DesiredAccess: Cardinal): THandle;
  external 'OpenServiceW@advapi32.dll stdcall';
function QueryServiceStatusEx(Service: THandle; InfoLevel: Cardinal; var Status: TServiceStatusProcess; BufferSize: Cardinal; var BytesNeeded: Cardinal): Boolean;
  external 'QueryServiceStatusEx@advapi32.dll stdcall';
function ControlService(Service: THandle; Control: Cardinal; var Status: TServiceStatus): Boolean;
  external 'ControlService@advapi32.dll stdcall';
function DeleteService(Service: THandle): Boolean;
  external 'DeleteService@advapi32.dll stdcall';
function CloseServiceHandle(Handle: THandle): Boolean;
  external 'CloseServiceHandle@advapi32.dll stdcall';
function OpenProcess(DesiredAccess: Cardinal; InheritHandle: Boolean; ProcessId: Cardinal): THandle;
  external 'OpenProcess@kernel32.dll stdcall';
function WaitForSingleObject(Handle: THandle; Milliseconds: Cardinal): Cardinal;
  external 'WaitForSingleObject@kernel32.dll stdcall';
function CloseHandle(Handle: THandle): Boolean;
  external 'CloseHandle@kernel32.dll stdcall';
function GetTickCount(): Cardinal;
  external 'GetTickCount@kernel32.dll stdcall';

{ The service's state (0 when it cannot be queried) and the id of its process (0 when none). }
function ServiceState(Service: THandle; var ProcessId: Cardinal): Cardinal;
var
  Status: TServiceStatusProcess;
  Needed: Cardinal;
begin
  Result := 0;
  ProcessId := 0;
  if QueryServiceStatusEx(Service, SC_STATUS_PROCESS_INFO, Status, SERVICE_STATUS_PROCESS_SIZE, Needed) then
  begin
    Result := Status.CurrentState;
    ProcessId := Status.ProcessId;
  end;
end;

{ '' once the service is stopped, its process has ended and the service is deleted (or when there
  was none); else what went wrong. }
function RemoveHelperService(): String;
var
  Manager, Service, Process: THandle;
  Control: TServiceStatus;
  State, ProcessId, Error, Started: Cardinal;
begin
  Result := '';
  Manager := OpenSCManager('', 'ServicesActive', SC_MANAGER_CONNECT);
  if Manager = 0 then
  begin
    Result := 'cannot open the Service Control Manager: ' + SysErrorMessage(DLLGetLastError());
    Exit;
  end;
  Service := OpenService(Manager, '{#ServiceName}', SERVICE_STOP or SERVICE_QUERY_STATUS or DELETE_ACCESS);
  if Service = 0 then
  begin
    Error := DLLGetLastError();
    if Error <> ERROR_SERVICE_DOES_NOT_EXIST then
      Result := 'cannot open the service {#ServiceName}: ' + SysErrorMessage(Error)
    else
      Log('{#ServiceName}: not installed');
    CloseServiceHandle(Manager);
    Exit;
  end;

  State := ServiceState(Service, ProcessId);
  Process := 0;
  if ProcessId <> 0 then
    Process := OpenProcess(SYNCHRONIZE_ACCESS, False, ProcessId);
  Log(Format('{#ServiceName}: state %d, process %d', [State, ProcessId]));
  { Time measured by the clock: ControlService itself can wait for a service that does not answer. }
  Started := GetTickCount();
  while (State <> SERVICE_STOPPED) and (GetTickCount() - Started < STOP_TIMEOUT_MS) do
  begin
    { Refused while the service is still starting: asked again on the next round. }
    if State <> SERVICE_STOP_PENDING then
      ControlService(Service, SERVICE_CONTROL_STOP, Control);
    Sleep(POLL_MS);
    State := ServiceState(Service, ProcessId);
  end;
  if State <> SERVICE_STOPPED then
    Result := Format('the service {#ServiceName} did not stop within %d seconds', [STOP_TIMEOUT_MS div 1000])
  else
  begin
    Log(Format('{#ServiceName}: stopped after %d ms', [GetTickCount() - Started]));
    { Its files stay in use until its process has ended, a moment after it reported "stopped". }
    if Process <> 0 then
      WaitForSingleObject(Process, GONE_TIMEOUT_MS);
    if not DeleteService(Service) then
    begin
      Error := DLLGetLastError();
      if Error <> ERROR_SERVICE_MARKED_FOR_DELETE then
        Result := 'cannot delete the service {#ServiceName}: ' + SysErrorMessage(Error);
    end;
  end;
  if Process <> 0 then
    CloseHandle(Process);
  CloseServiceHandle(Service);

  { The SCM drops a deleted service when the last handle to it is closed (an open Services console
    can hold one); until then a new one of that name cannot be created. }
  if Result = '' then
  begin
    Started := GetTickCount();
    Service := OpenService(Manager, '{#ServiceName}', SERVICE_QUERY_STATUS);
    while (Service <> 0) and (GetTickCount() - Started < GONE_TIMEOUT_MS) do
    begin
      CloseServiceHandle(Service);
      Sleep(POLL_MS);
      Service := OpenService(Manager, '{#ServiceName}', SERVICE_QUERY_STATUS);
    end;
    if Service <> 0 then
    begin
      CloseServiceHandle(Service);
      Result := 'the service {#ServiceName} is deleted but another program (the Services console?) still has it open: close it and try again';
    end
    else
      Log('{#ServiceName}: deleted');
  end;
  CloseServiceHandle(Manager);
end;

function PrepareToInstall(var NeedsRestart: Boolean): String;
var
  Problem: String;
begin
  Result := '';
  Problem := RemoveHelperService();
  if Problem <> '' then
    Result := 'Setup must stop and remove the {#ServiceDisplayName} before it replaces its files, but ' + Problem + '.';
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  Problem: String;
begin
  if CurUninstallStep = usUninstall then
  begin
    Problem := RemoveHelperService();
    if Problem <> '' then
    begin
      Log('Removing the service failed: ' + Problem);
      SuppressibleMsgBox('The {#ServiceDisplayName} could not be removed: ' + Problem
        + '. From an administrator prompt: sc stop {#ServiceName} and sc delete {#ServiceName}.', mbError, MB_OK, IDOK);
    end;
  end;
end;
