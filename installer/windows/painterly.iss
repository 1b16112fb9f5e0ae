; Inno Setup script for Painterly on Windows (Inno Setup 6.2 or newer).
;
; Packs the PyInstaller one-folder build dist\Painterly\ (made by
; installer\painterly.spec, see installer\windows\build-windows.ps1) into
; dist\Painterly-<version>-windows-x64-setup.exe:
;
;   iscc /DAppVersion=0.1.0 installer\windows\painterly.iss
;
; Not built or tested on the Linux machine this project is developed on: it
; follows the Linux build's layout (same spec, same data list), nothing more.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif

[Setup]
; A fixed AppId makes a newer installer upgrade an older installation in place.
AppId={{6F1E9C2A-7B7D-4E55-9C0E-2B8D9A4F3C11}
AppName=Painterly
AppVersion={#AppVersion}
AppPublisher=Painterly
AppComments=Neural style transfer (Gatys, Ecker & Bethge 2016)
DefaultDirName={autopf}\Painterly
DefaultGroupName=Painterly
DisableProgramGroupPage=yes
; Per-user or all-users install, the user's choice; per-user needs no admin rights.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
; torch's Windows wheels are 64-bit only.
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
SetupIconFile=..\icons\painterly.ico
UninstallDisplayIcon={app}\Painterly.exe
OutputDir=..\..\dist
OutputBaseFilename=Painterly-{#AppVersion}-windows-x64-setup
; The CUDA build of torch makes the folder several GB; most of it is already
; compressed GPU code, so fast LZMA2 without solid compression costs little size
; and saves a lot of build and install time.
Compression=lzma2/fast
SolidCompression=no
; A single Setup.exe cannot hold more than about 4 GB: past that, Inno writes
; Setup.exe plus Painterly-...-1.bin, -2.bin ... slices, shipped together.
DiskSpanning=yes
DiskSliceSize=max
WizardStyle=modern
ChangesAssociations=no

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; The whole one-folder build: both executables and _internal\ (libraries,
; resources\, the embedded weights).  Nothing else needs installing.
Source: "..\..\dist\Painterly\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Painterly"; Filename: "{app}\Painterly.exe"
Name: "{autodesktop}\Painterly"; Filename: "{app}\Painterly.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\Painterly.exe"; Description: "{cm:LaunchProgram,Painterly}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; PyInstaller bundles write no files beside themselves; settings and autosaves
; live in the user's profile and are kept on uninstall, as users expect.
Type: filesandordirs; Name: "{app}\_internal\__pycache__"
