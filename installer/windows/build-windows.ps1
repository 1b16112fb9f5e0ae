# Build Painterly for Windows: dist\Painterly\ (PyInstaller one-folder) and,
# when Inno Setup's iscc.exe is on PATH, dist\Painterly-<version>-windows-x64-setup.exe.
#
#   powershell -ExecutionPolicy Bypass -File installer\windows\build-windows.ps1
#   $env:TORCH_INDEX = "https://download.pytorch.org/whl/cpu"; ...   # a CPU-only build
#
# The Windows twin of installer/build-linux.sh (same spec, same data list).
# Written from the Linux build; not run on Windows by the project so far.
$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest

$repo = Resolve-Path (Join-Path $PSScriptRoot "..\..")
Set-Location $repo

# PyPI's torch wheels for Windows are CPU-only; the CUDA builds come from
# PyTorch's own index.  Pick the CUDA line your users' drivers support.
$torchIndex = if ($env:TORCH_INDEX) { $env:TORCH_INDEX } else { "https://download.pytorch.org/whl/cu128" }
$python = if ($env:PYTHON) { $env:PYTHON } else { "py -3.11" }

if (-not (Test-Path "build\venv\Scripts\python.exe")) {
    Invoke-Expression "$python -m venv build\venv"
}
$venvPython = "build\venv\Scripts\python.exe"

function Invoke-Checked([string]$exe, [string[]]$arguments) {
    & $exe @arguments
    if ($LASTEXITCODE -ne 0) { throw "$exe $arguments failed with exit code $LASTEXITCODE" }
}

# torch first, from the index chosen above, so that `pip install .` finds its
# requirement already met instead of taking PyPI's CPU-only wheel.
Invoke-Checked $venvPython @("-m", "pip", "install", "torch>=2.10,<2.15", "--index-url", $torchIndex)
Invoke-Checked $venvPython @("-m", "pip", "install", ".", "pyinstaller>=6.10,<7")
Invoke-Checked $venvPython @("-m", "pip", "install", "--force-reinstall", "--no-deps", ".")
Invoke-Checked $venvPython @("-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
    "--distpath", "dist", "--workpath", "build\pyinstaller", "installer\painterly.spec")

$version = & $venvPython -c "import importlib.metadata as m; print(m.version('painterly'))"
if (Get-Command iscc -ErrorAction SilentlyContinue) {
    Invoke-Checked "iscc" @("/DAppVersion=$version", "installer\windows\painterly.iss")
} else {
    Write-Host "iscc (Inno Setup 6) not on PATH: dist\Painterly\ is built, the installer is not"
}
