$ErrorActionPreference = 'Stop'
$from = '\\print-b\F3-B'
$to = '\\print-a\Floor3'
# 1. the preferences of the old connection (as last read, if its server does not answer)
$duplex = ''; $color = $null; $paper = 'Letter'
try {
    $c = Get-PrintConfiguration -PrinterName $from
    $duplex = [string]$c.DuplexingMode; $color = [bool]$c.Color; $paper = [string]$c.PaperSize
} catch { }
# 2. the user is already connected to \\print-a\Floor3
try {
    # 3. the preferences on it
    if ($duplex) { Set-PrintConfiguration -PrinterName $to -DuplexingMode $duplex }
    if ($null -ne $color) { Set-PrintConfiguration -PrinterName $to -Color $color }
    if ($paper) { Set-PrintConfiguration -PrinterName $to -PaperSize $paper }
    # 4. the default printer, as the old connection was
    $p = Get-CimInstance -ClassName Win32_Printer | Where-Object { $_.Name -eq $to } | Select-Object -First 1
    $r = Invoke-CimMethod -InputObject $p -MethodName SetDefaultPrinter
    if ($r.ReturnValue -ne 0) { throw "SetDefaultPrinter returned $($r.ReturnValue)" }
} catch {
    # the connection was there before: left as it is
    throw
}
# 5. the old connection (if it cannot be removed now, the switch stands and the next pass removes it)
try { Remove-Printer -Name $from } catch { Write-Warning "old connection not removed: $_" }
