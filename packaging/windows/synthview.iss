; Inno Setup script for the Windows installer (SynthView-<version>-setup.exe).
; Built on Windows only (CI job "windows" in .github/workflows/installers.yml):
;   bash packaging/build.sh --no-deb            -> dist\synthview\ (PyInstaller one-folder)
;   iscc /DAppVersion=0.1.0 packaging\windows\synthview.iss
; Per-user install by default (no administrator rights needed on locked-down workstations);
; file associations for .dcm and .nii. Windows keys an association on the last extension only, so
; .nii.gz could be associated only by claiming every .gz file: it is not; a .nii.gz opens by dropping
; it on the SynthView icon or window, or with File > Open. The uninstaller removes only installed files,
; never the user's settings (%APPDATA%\SynthView) or data.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "SynthView"
#define AppExe "synthview.exe"

[Setup]
AppId={{6F5C2B1E-3D4A-4E8B-9C71-5A2D9E0B7F13}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=SynthView team
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=SynthView-{#AppVersion}-setup
SetupIconFile=..\..\resources\icons\synthview.ico
UninstallDisplayIcon={app}\{#AppExe}
LicenseFile=..\LICENSES.md
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesAssociations=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"
Name: "associate"; Description: "Open .dcm and .nii files with SynthView (.nii.gz: drop on the icon or File > Open)"; GroupDescription: "File types:"

[Files]
Source: "..\..\dist\synthview\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{group}\Uninstall {#AppName}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Registry]
Root: HKA; Subkey: "Software\Classes\SynthView.Image"; ValueType: string; ValueName: ""; ValueData: "Medical image (SynthView)"; Flags: uninsdeletekey; Tasks: associate
Root: HKA; Subkey: "Software\Classes\SynthView.Image\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppExe},0"; Tasks: associate
Root: HKA; Subkey: "Software\Classes\SynthView.Image\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%1"""; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.dcm\OpenWithProgids"; ValueType: string; ValueName: "SynthView.Image"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\.nii\OpenWithProgids"; ValueType: string; ValueName: "SynthView.Image"; ValueData: ""; Flags: uninsdeletevalue; Tasks: associate

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

; No [UninstallDelete] section on purpose: settings and reader-study data in the user's folders stay.
