# Authenticode-sign Windows executables/installers with SignTool, from CI secrets:
#   WINDOWS_CERTIFICATE_PFX_BASE64   code-signing certificate (.pfx), base64
#   WINDOWS_CERTIFICATE_PASSWORD     its password
# Without them it says so and exits 0 (an unsigned build: SmartScreen will warn users).
#   pwsh packaging/windows/sign.ps1 dist/synthview/synthview.exe dist/synthview/synthview-cli.exe
param([Parameter(Mandatory = $true, ValueFromRemainingArguments = $true)][string[]]$Files)
$ErrorActionPreference = "Stop"
if (-not $env:WINDOWS_CERTIFICATE_PFX_BASE64) {
    Write-Host "[sign] SKIPPED: no WINDOWS_CERTIFICATE_PFX_BASE64 secret; $($Files -join ', ') not signed"
    exit 0
}
$pfx = Join-Path $env:RUNNER_TEMP "synthview-codesign.pfx"
[IO.File]::WriteAllBytes($pfx, [Convert]::FromBase64String($env:WINDOWS_CERTIFICATE_PFX_BASE64))
try {
    $signtool = Get-ChildItem "${env:ProgramFiles(x86)}\Windows Kits\10\bin\*\x64\signtool.exe" |
        Sort-Object FullName -Descending | Select-Object -First 1
    if (-not $signtool) { throw "signtool.exe not found (Windows SDK)" }
    & $signtool.FullName sign /f $pfx /p $env:WINDOWS_CERTIFICATE_PASSWORD /fd SHA256 `
        /tr http://timestamp.digicert.com /td SHA256 /d SynthView @Files
    if ($LASTEXITCODE) { exit $LASTEXITCODE }
    & $signtool.FullName verify /pa @Files
    if ($LASTEXITCODE) { exit $LASTEXITCODE }
} finally {
    Remove-Item -Force $pfx
}
Write-Host "[sign] signed: $($Files -join ', ')"
