
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'smbcp' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'smbcp'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'smbcp' {
            [CompletionResult]::new('--lev', '--lev', [CompletionResultType]::ParameterName, 'Only copy the top N levels of the source tree (1 = SOURCE itself) [/LEV:n]')
            [CompletionResult]::new('--include', '--include', [CompletionResultType]::ParameterName, 'Only copy files whose name (or, with a `/`, relative path) matches GLOB; repeatable, together with FILE_GLOB any one match is enough [rsync --include]')
            [CompletionResult]::new('--files-from', '--files-from', [CompletionResultType]::ParameterName, 'Only copy the files listed in FILE, one path relative to SOURCE a line ("-": stdin; empty lines and lines starting with # are skipped) [rsync --files-from]')
            [CompletionResult]::new('--include-attr', '--include-attr', [CompletionResultType]::ParameterName, 'Only copy files with at least one of these attributes: R A S H C N E T O [/IA:attrs]')
            [CompletionResult]::new('--exclude-attr', '--exclude-attr', [CompletionResultType]::ParameterName, 'Skip files with any of these attributes: R A S H C N E T O [/XA:attrs]')
            [CompletionResult]::new('--exclude-file', '--exclude-file', [CompletionResultType]::ParameterName, 'Exclude files whose name or relative path matches GLOB; repeatable [/XF]')
            [CompletionResult]::new('--exclude-dir', '--exclude-dir', [CompletionResultType]::ParameterName, 'Exclude directories whose name or relative path matches GLOB; repeatable [/XD]')
            [CompletionResult]::new('--max-size', '--max-size', [CompletionResultType]::ParameterName, 'Skip files bigger than SIZE (bytes, or with K/M/G/T suffix) [/MAX:n]')
            [CompletionResult]::new('--min-size', '--min-size', [CompletionResultType]::ParameterName, 'Skip files smaller than SIZE [/MIN:n]')
            [CompletionResult]::new('--max-age', '--max-age', [CompletionResultType]::ParameterName, 'Skip files older than AGE: days (n < 1900), a date YYYYMMDD, or a duration like 12h [/MAXAGE:n]')
            [CompletionResult]::new('--min-age', '--min-age', [CompletionResultType]::ParameterName, 'Skip files newer than AGE (same forms as --max-age) [/MINAGE:n]')
            [CompletionResult]::new('--max-delete', '--max-delete', [CompletionResultType]::ParameterName, 'Refuse to delete anything when more than N items would be deleted ("unlimited" to allow any number) [default: 1000]')
            [CompletionResult]::new('--mt', '--mt', [CompletionResultType]::ParameterName, 'Number of concurrent copy jobs (files or blocks of big files), 1–128 [/MT:n]')
            [CompletionResult]::new('--zero-copy', '--zero-copy', [CompletionResultType]::ParameterName, 'Move file data between socket and local file inside the kernel (Linux, unsigned sessions): auto = downloads, and uploads to servers not on this machine')
            [CompletionResult]::new('--temp-name', '--temp-name', [CompletionResultType]::ParameterName, 'Name of the temporary file each file is written as before the rename over its final name: {name} is the file''s name, {rand} (required) 8 random hex digits. Default `.{name}.smbcp-{rand}.tmp` (on an SMB destination `{name}.smbcp-{rand}` in `.smbcp-tmp` at DEST''s root), then `{name}.smbcp-{rand}` beside the file if the server refuses that (e.g. Samba `veto files = /*.tmp/`); with this flag, only PATTERN')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Retries for each file after a transient error [/R:n]')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait before the first retry (doubles each retry, with jitter), e.g. 2s, 500ms [/W:n]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Timeout for connecting and for each SMB request, e.g. 30s')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where resume journals live (default $XDG_STATE_HOME/smbcp, else ~/.local/state/smbcp)')
            [CompletionResult]::new('--reconnect-for', '--reconnect-for', [CompletionResultType]::ParameterName, 'How long to keep dialling a server again after its connection was lost (files in flight wait, then go on where they were), e.g. 30s, 10m; 0 to fail at once')
            [CompletionResult]::new('--max-dir-entries', '--max-dir-entries', [CompletionResultType]::ParameterName, 'Fail a directory listing that returns more than N entries (a server that never ends a listing must not make smbcp list forever) [default: 1000000]')
            [CompletionResult]::new('--bwlimit', '--bwlimit', [CompletionResultType]::ParameterName, 'Limit total throughput to RATE bytes per second (K/M/G suffixes, or 100Mbit) [/IPG]')
            [CompletionResult]::new('--copy', '--copy', [CompletionResultType]::ParameterName, 'What to copy for files: D=data, A=attributes, T=timestamps [/COPY:DAT]')
            [CompletionResult]::new('--dcopy', '--dcopy', [CompletionResultType]::ParameterName, 'What to copy for directories: D=data, A=attributes, T=timestamps [/DCOPY:T]')
            [CompletionResult]::new('--log', '--log', [CompletionResultType]::ParameterName, 'Write the file list and summary to FILE instead of stdout (overwrite; UTF-8, so robocopy''s /UNILOG:file is the same) [/LOG:file]')
            [CompletionResult]::new('--log-append', '--log-append', [CompletionResultType]::ParameterName, 'Like --log, appending to FILE [/LOG+:file, /UNILOG+:file]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Write a JSON report (summary and per-file failures) to FILE, or "-" for stdout')
            [CompletionResult]::new('--events', '--events', [CompletionResultType]::ParameterName, 'Write live events as NDJSON (one JSON object a line: file start/done, retry, reconnect, failure, delete, summary) to FILE, or "-" for stdout')
            [CompletionResult]::new('--exit-codes', '--exit-codes', [CompletionResultType]::ParameterName, 'Exit-code convention')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'SMB user as [DOMAIN\]NAME (or put it in the URL: smb://DOMAIN;NAME@server/share)')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'SMB user as [DOMAIN\]NAME (or put it in the URL: smb://DOMAIN;NAME@server/share)')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from the first line of FILE (refused when group/others can read it)')
            [CompletionResult]::new('--auth-file', '--auth-file', [CompletionResultType]::ParameterName, 'Samba-style credentials file with username=, password= and domain= lines')
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'How to log on: auto (Kerberos when a ticket or --keytab is at hand and the server offers it, else NTLMv2), kerberos (never falls back to NTLM), ntlm')
            [CompletionResult]::new('--keytab', '--keytab', [CompletionResultType]::ParameterName, 'Get a Kerberos ticket for --user from this keytab (CI jobs); means --auth kerberos')
            [CompletionResult]::new('--spn', '--spn', [CompletionResultType]::ParameterName, 'The server''s Kerberos service principal (default cifs/SERVER as given), for aliases and IP addresses: cifs/host.example.com or cifs/host@REALM')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Copy subdirectories, but not empty ones [/S]')
            [CompletionResult]::new('--subdirs', '--subdirs', [CompletionResultType]::ParameterName, 'Copy subdirectories, but not empty ones [/S]')
            [CompletionResult]::new('-e', '-e', [CompletionResultType]::ParameterName, 'Copy subdirectories, including empty ones (implies --subdirs) [/E]')
            [CompletionResult]::new('--empty-dirs', '--empty-dirs', [CompletionResultType]::ParameterName, 'Copy subdirectories, including empty ones (implies --subdirs) [/E]')
            [CompletionResult]::new('--delete-excluded', '--delete-excluded', [CompletionResultType]::ParameterName, 'With --mirror or --purge, also delete destination files and directories that the filters exclude [rsync --delete-excluded]')
            [CompletionResult]::new('--exclude-older', '--exclude-older', [CompletionResultType]::ParameterName, 'Skip source files older than their destination copy [/XO]')
            [CompletionResult]::new('--exclude-newer', '--exclude-newer', [CompletionResultType]::ParameterName, 'Skip source files newer than their destination copy [/XN]')
            [CompletionResult]::new('--exclude-changed', '--exclude-changed', [CompletionResultType]::ParameterName, 'Skip changed files: same time, different size [/XC]')
            [CompletionResult]::new('--exclude-extra', '--exclude-extra', [CompletionResultType]::ParameterName, 'Ignore extra destination files and directories: not listed, never deleted [/XX]')
            [CompletionResult]::new('--follow-links', '--follow-links', [CompletionResultType]::ParameterName, 'Follow symlinks in a local SOURCE (default: skip them, each listed as *Symlink); a link back to a directory on its own path is skipped as a loop. Never follows destination symlinks')
            [CompletionResult]::new('--include-same', '--include-same', [CompletionResultType]::ParameterName, 'Copy files even when they are the same (size and time) [/IS]')
            [CompletionResult]::new('--fft', '--fft', [CompletionResultType]::ParameterName, 'Compare times with a 2-second tolerance (FAT granularity) [/FFT]')
            [CompletionResult]::new('--mirror', '--mirror', [CompletionResultType]::ParameterName, 'Mirror: --empty-dirs plus --purge [/MIR]')
            [CompletionResult]::new('--purge', '--purge', [CompletionResultType]::ParameterName, 'Delete destination files and directories that are not in the source [/PURGE]')
            [CompletionResult]::new('--move', '--move', [CompletionResultType]::ParameterName, 'Move files: delete each source file once it is copied [/MOV]')
            [CompletionResult]::new('--move-all', '--move-all', [CompletionResultType]::ParameterName, 'Move files and directories: like --move, then remove emptied source directories [/MOVE]')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'List what would be copied or deleted; change nothing [/L]')
            [CompletionResult]::new('--list-only', '--list-only', [CompletionResultType]::ParameterName, 'List what would be copied or deleted; change nothing [/L]')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'List what would be copied or deleted; change nothing [/L]')
            [CompletionResult]::new('--create', '--create', [CompletionResultType]::ParameterName, 'Create the directory tree and zero-length files only [/CREATE]')
            [CompletionResult]::new('--unbuffered', '--unbuffered', [CompletionResultType]::ParameterName, 'Unbuffered I/O: O_DIRECT locally, unbuffered read/write on SMB 3.0.2+ [/J]')
            [CompletionResult]::new('--verify', '--verify', [CompletionResultType]::ParameterName, 'Read every copied file back from the destination and compare it with the source (xxh3 per block) before it gets its final name; a mismatch is a failure (VERIFY_MISMATCH)')
            [CompletionResult]::new('--restartable', '--restartable', [CompletionResultType]::ParameterName, 'Restartable mode for every file copied in blocks (default: files of 64 MiB and more): a resume journal in --state-dir records the blocks written, so a retry or the next run after a crash copies only the missing ones [/Z]')
            [CompletionResult]::new('--no-restartable', '--no-restartable', [CompletionResultType]::ParameterName, 'No restartable mode: an interrupted big file starts over')
            [CompletionResult]::new('--sign', '--sign', [CompletionResultType]::ParameterName, 'Sign every SMB message, even when the server does not require it (the default)')
            [CompletionResult]::new('--no-sign', '--no-sign', [CompletionResultType]::ParameterName, 'Sign SMB messages only when the server requires it: faster, and needed for --zero-copy, but a man in the middle can then change what is copied')
            [CompletionResult]::new('--encrypt', '--encrypt', [CompletionResultType]::ParameterName, 'Require SMB 3 encryption for every share (fail when the server cannot)')
            [CompletionResult]::new('--tee', '--tee', [CompletionResultType]::ParameterName, 'With --log: also write to stdout (without a log, output goes to stdout anyway) [/TEE]')
            [CompletionResult]::new('--no-file-list', '--no-file-list', [CompletionResultType]::ParameterName, 'Do not list files [/NFL]')
            [CompletionResult]::new('--no-dir-list', '--no-dir-list', [CompletionResultType]::ParameterName, 'Do not list directories [/NDL]')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (it is only ever shown when stderr is a terminal) [/NP]')
            [CompletionResult]::new('--no-header', '--no-header', [CompletionResultType]::ParameterName, 'No job header (Started, Source, Dest, Files lines) [/NJH]')
            [CompletionResult]::new('--no-summary', '--no-summary', [CompletionResultType]::ParameterName, 'No job summary (the closing table) [/NJS]')
            [CompletionResult]::new('--no-class', '--no-class', [CompletionResultType]::ParameterName, 'Do not print file classes ("New File", "Newer", ...) in the lists [/NC]')
            [CompletionResult]::new('--no-size', '--no-size', [CompletionResultType]::ParameterName, 'Do not print sizes (or directory file counts) in the lists [/NS]')
            [CompletionResult]::new('--list-times', '--list-times', [CompletionResultType]::ParameterName, 'List each file''s last write time (UTC; the source''s, a destination extra''s own) [/TS]')
            [CompletionResult]::new('--full-path', '--full-path', [CompletionResultType]::ParameterName, 'List full paths (SOURCE or DEST joined with the relative path) [/FP]')
            [CompletionResult]::new('--bytes', '--bytes', [CompletionResultType]::ParameterName, 'Print sizes as exact byte counts [/BYTES]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output: also list skipped files; -vv adds debug logging')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output: also list skipped files; -vv adds debug logging')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less output: no file/dir lists and no summary; errors only')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less output: no file/dir lists and no summary; errors only')
            [CompletionResult]::new('--password-stdin', '--password-stdin', [CompletionResultType]::ParameterName, 'Read the password from the first line of stdin')
            [CompletionResult]::new('--empty-password', '--empty-password', [CompletionResultType]::ParameterName, 'Accept an empty password (from --password-file, --password-stdin, --auth-file, SMBCP_PASSWORD or the prompt); without it an empty one is an error')
            [CompletionResult]::new('--guest', '--guest', [CompletionResultType]::ParameterName, 'Log on as guest (no password). A guest session has no key, so its messages are not signed: --guest conflicts with --sign. Without --guest, a logon the server turns into a guest session (a wrong password or unknown user) is refused')
            [CompletionResult]::new('--kerberos', '--kerberos', [CompletionResultType]::ParameterName, 'Get a Kerberos ticket for --user with the password (from the usual sources) instead of using the credential cache; means --auth kerberos')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
