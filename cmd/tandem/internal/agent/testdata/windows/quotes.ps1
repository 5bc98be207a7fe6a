$ErrorActionPreference = 'Stop'
$from = '\\print-a\Bob''s'
$to = '\\print-b\Bob’’s'
# 1. the preferences of the old connection (as last read, if its server does not answer)
$duplex = ''; $color = $null; $paper = ''
try {
    $c = Get-PrintConfiguration -PrinterName $from
    $duplex = [string]$c.DuplexingMode; $color = [bool]$c.Color; $paper = [string]$c.PaperSize
} catch { }
# 2. the connection on the new server
Add-Printer -ConnectionName $to
try {
    # 3. the preferences on it
    if ($duplex) { Set-PrintConfiguration -PrinterName $to -DuplexingMode $duplex }
    if ($null -ne $color) { Set-PrintConfiguration -PrinterName $to -Color $color }
    if ($paper) { Set-PrintConfiguration -PrinterName $to -PaperSize $paper }
} catch {
    # nothing half-done: the new connection goes, the old one stays
    Remove-Printer -Name $to -ErrorAction SilentlyContinue
    throw
}
# 5. the old connection (if it cannot be removed now, the switch stands and the next pass removes it)
try { Remove-Printer -Name $from } catch { Write-Warning "old connection not removed: $_" }
