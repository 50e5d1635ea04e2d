; Inno Setup script for the Windows installer. Build the bundle first on Windows:
;   py -m venv .venv && .venv\Scripts\pip install -e .[packaging]
;   .venv\Scripts\pyinstaller --noconfirm installer\ecms-desktop.spec
; then compile this script with Inno Setup 6 (iscc installer\windows\ecms-desktop.iss).
#define AppVersion GetEnv("ECMS_VERSION")
#if AppVersion == ""
  #define AppVersion "0.1.0"
#endif

[Setup]
AppName=ECMS Desktop
AppVersion={#AppVersion}
AppPublisher=ECMS Desktop developers
DefaultDirName={autopf}\ECMS Desktop
DefaultGroupName=ECMS Desktop
OutputBaseFilename=ecms-desktop-{#AppVersion}-setup
LicenseFile=..\..\LICENSE
Compression=lzma2
SolidCompression=yes
ArchitecturesInstallIn64BitMode=x64compatible

[Files]
Source: "..\..\dist\ecms-desktop\*"; DestDir: "{app}"; Flags: recursesubdirs ignoreversion

[Icons]
Name: "{group}\ECMS Desktop"; Filename: "{app}\ecms-desktop.exe"
Name: "{group}\Licences"; Filename: "{app}\_internal\licenses"

[Run]
Filename: "{app}\ecms-desktop.exe"; Description: "Start ECMS Desktop"; Flags: nowait postinstall skipifsilent
