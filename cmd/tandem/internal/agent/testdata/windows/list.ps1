$ErrorActionPreference = 'Stop'
$def = Get-CimInstance -ClassName Win32_Printer -Filter 'Default = TRUE' | Select-Object -First 1 -ExpandProperty Name
$list = @(Get-Printer | Where-Object { $_.Type -eq 'Connection' } | ForEach-Object {
    $o = [ordered]@{ name = $_.Name; default = ($_.Name -eq $def); duplex = ''; color = $null; paper = '' }
    try {
        $c = Get-PrintConfiguration -PrinterName $_.Name
        $o.duplex = [string]$c.DuplexingMode; $o.color = [bool]$c.Color; $o.paper = [string]$c.PaperSize
    } catch { }
    [pscustomobject]$o
})
ConvertTo-Json -InputObject $list -Compress
