; Inno Setup 6 script for the Windows installer. UNTESTED until a Windows runner builds it (see
; installer/README.md and .github/workflows/build.yml, which runs these steps). On Windows:
;   py -3.11 -m venv .venv && .venv\Scripts\pip install .[packaging]
;   .venv\Scripts\pyinstaller --noconfirm --distpath dist --workpath build\pyinstaller installer\ecms-desktop.spec
;   .venv\Scripts\python installer\notices.py dist\ecms-desktop
;   set ECMS_VERSION=<the version>  &&  iscc installer\windows\ecms-desktop.iss
; installer\notices.py writes THIRD-PARTY-NOTICES.md, SOURCE-OFFER.md, licenses\ and source\ into the bundle
; folder, so they are installed with the program.
#define AppVersion GetEnv("ECMS_VERSION")
#if AppVersion == ""
  #error Set ECMS_VERSION to the program's version (python -c "import ecms_desktop; print(ecms_desktop.__version__)")
#endif
#define AppExe "ecms-desktop.exe"
#define ProgId "ECMSDesktop.Document"

[Setup]
; The same AppId for every version, so that a new version replaces the old one.
AppId={{B0E776EE-0F49-4078-83E5-A7C070377FE7}
AppName=ECMS Desktop
AppVersion={#AppVersion}
AppPublisher=ECMS Desktop developers
DefaultDirName={autopf}\ECMS Desktop
DefaultGroupName=ECMS Desktop
DisableProgramGroupPage=yes
; The licence page: the GNU AGPL, version 3 or later.
LicenseFile=..\..\LICENSE
OutputDir=..\..\dist
OutputBaseFilename=ecms-desktop-{#AppVersion}-windows-x64-setup
Compression=lzma2
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
; Install for everyone (administrator) or, if the user chooses, only for themselves.
PrivilegesRequiredOverridesAllowed=dialog
ChangesAssociations=yes
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName=ECMS Desktop {#AppVersion}

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "..\..\dist\ecms-desktop\*"; DestDir: "{app}"; Flags: recursesubdirs createallsubdirs ignoreversion

[Icons]
Name: "{group}\ECMS Desktop"; Filename: "{app}\{#AppExe}"
Name: "{group}\Third-party notices"; Filename: "{app}\THIRD-PARTY-NOTICES.md"
Name: "{group}\Licence texts"; Filename: "{app}\licenses"
Name: "{group}\Source code offer"; Filename: "{app}\SOURCE-OFFER.md"
Name: "{group}\Uninstall ECMS Desktop"; Filename: "{uninstallexe}"
Name: "{autodesktop}\ECMS Desktop"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Registry]
; "Open with > ECMS Desktop" for PDFs and images, without taking the default program from the user: a ProgID
; of our own, listed under each extension's OpenWithProgids. The file goes to the intake inbox.
Root: HKA; Subkey: "Software\Classes\{#ProgId}"; ValueType: string; ValueName: ""; ValueData: "Certificate document (ECMS Desktop)"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\{#ProgId}\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppExe},0"
Root: HKA; Subkey: "Software\Classes\{#ProgId}\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%1"""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}"; ValueType: string; ValueName: "FriendlyAppName"; ValueData: "ECMS Desktop"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%1"""
Root: HKA; Subkey: "Software\Classes\.pdf\OpenWithProgids"; ValueType: string; ValueName: "{#ProgId}"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.png\OpenWithProgids"; ValueType: string; ValueName: "{#ProgId}"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.jpg\OpenWithProgids"; ValueType: string; ValueName: "{#ProgId}"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.jpeg\OpenWithProgids"; ValueType: string; ValueName: "{#ProgId}"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.tif\OpenWithProgids"; ValueType: string; ValueName: "{#ProgId}"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.tiff\OpenWithProgids"; ValueType: string; ValueName: "{#ProgId}"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".pdf"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".png"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".jpg"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".jpeg"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".tif"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".tiff"; ValueData: ""

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,ECMS Desktop}"; Flags: nowait postinstall skipifsilent
