complete -c smbcp -l lev -d 'Only copy the top N levels of the source tree (1 = SOURCE itself) [/LEV:n]' -r
complete -c smbcp -l include -d 'Only copy files whose name (or, with a `/`, relative path) matches GLOB; repeatable, together with FILE_GLOB any one match is enough [rsync --include]' -r
complete -c smbcp -l files-from -d 'Only copy the files listed in FILE, one path relative to SOURCE a line ("-": stdin; empty lines and lines starting with # are skipped) [rsync --files-from]' -r -F
complete -c smbcp -l include-attr -d 'Only copy files with at least one of these attributes: R A S H C N E T O [/IA:attrs]' -r
complete -c smbcp -l exclude-attr -d 'Skip files with any of these attributes: R A S H C N E T O [/XA:attrs]' -r
complete -c smbcp -l exclude-file -d 'Exclude files whose name or relative path matches GLOB; repeatable [/XF]' -r
complete -c smbcp -l exclude-dir -d 'Exclude directories whose name or relative path matches GLOB; repeatable [/XD]' -r
complete -c smbcp -l max-size -d 'Skip files bigger than SIZE (bytes, or with K/M/G/T suffix) [/MAX:n]' -r
complete -c smbcp -l min-size -d 'Skip files smaller than SIZE [/MIN:n]' -r
complete -c smbcp -l max-age -d 'Skip files older than AGE: days (n < 1900), a date YYYYMMDD, or a duration like 12h [/MAXAGE:n]' -r
complete -c smbcp -l min-age -d 'Skip files newer than AGE (same forms as --max-age) [/MINAGE:n]' -r
complete -c smbcp -l max-delete -d 'Refuse to delete anything when more than N items would be deleted ("unlimited" to allow any number) [default: 1000]' -r
complete -c smbcp -l mt -d 'Number of concurrent copy jobs (files or blocks of big files), 1–128 [/MT:n]' -r
complete -c smbcp -l zero-copy -d 'Move file data between socket and local file inside the kernel (Linux, unsigned sessions): auto = downloads, and uploads to servers not on this machine' -r -f -a "auto\t'Downloads always; uploads unless the server is on this machine. Over loopback the server\'s CPU is the network: handed page-cache pages by reference, smbd copies them cold from RAM (measured: smbd 0.48-0.59 CPU-s/GB against 0.39-0.40 when we send a copy), so there an upload copies through memory'
always\t'Whenever the session allows it, loopback included'
never\t'Never: every byte passes through memory'"
complete -c smbcp -l temp-name -d 'Name of the temporary file each file is written as before the rename over its final name: {name} is the file\'s name, {rand} (required) 8 random hex digits. Default `.{name}.smbcp-{rand}.tmp` (on an SMB destination `{name}.smbcp-{rand}` in `.smbcp-tmp` at DEST\'s root), then `{name}.smbcp-{rand}` beside the file if the server refuses that (e.g. Samba `veto files = /*.tmp/`); with this flag, only PATTERN' -r
complete -c smbcp -l retries -d 'Retries for each file after a transient error [/R:n]' -r
complete -c smbcp -l wait -d 'Wait before the first retry (doubles each retry, with jitter), e.g. 2s, 500ms [/W:n]' -r
complete -c smbcp -l timeout -d 'Timeout for connecting and for each SMB request, e.g. 30s' -r
complete -c smbcp -l state-dir -d 'Where resume journals live (default $XDG_STATE_HOME/smbcp, else ~/.local/state/smbcp)' -r -f -a "(__fish_complete_directories)"
complete -c smbcp -l reconnect-for -d 'How long to keep dialling a server again after its connection was lost (files in flight wait, then go on where they were), e.g. 30s, 10m; 0 to fail at once' -r
complete -c smbcp -l max-dir-entries -d 'Fail a directory listing that returns more than N entries (a server that never ends a listing must not make smbcp list forever) [default: 1000000]' -r
complete -c smbcp -l bwlimit -d 'Limit total throughput to RATE bytes per second (K/M/G suffixes, or 100Mbit) [/IPG]' -r
complete -c smbcp -l copy -d 'What to copy for files: D=data, A=attributes, T=timestamps [/COPY:DAT]' -r
complete -c smbcp -l dcopy -d 'What to copy for directories: D=data, A=attributes, T=timestamps [/DCOPY:T]' -r
complete -c smbcp -l log -d 'Write the file list and summary to FILE instead of stdout (overwrite; UTF-8, so robocopy\'s /UNILOG:file is the same) [/LOG:file]' -r -F
complete -c smbcp -l log-append -d 'Like --log, appending to FILE [/LOG+:file, /UNILOG+:file]' -r -F
complete -c smbcp -l json -d 'Write a JSON report (summary and per-file failures) to FILE, or "-" for stdout' -r -F
complete -c smbcp -l events -d 'Write live events as NDJSON (one JSON object a line: file start/done, retry, reconnect, failure, delete, summary) to FILE, or "-" for stdout' -r -F
complete -c smbcp -l exit-codes -d 'Exit-code convention' -r -f -a "default\t'0 success, 1 some items failed, 2 usage error, 3 fatal error'
robocopy\t'robocopy\'s bitmask: 1 copied, 2 extras, 4 mismatches, 8 failures, 16 fatal'"
complete -c smbcp -s u -l user -d 'SMB user as [DOMAIN\\]NAME (or put it in the URL: smb://DOMAIN;NAME@server/share)' -r
complete -c smbcp -l password-file -d 'Read the password from the first line of FILE (refused when group/others can read it)' -r -F
complete -c smbcp -l auth-file -d 'Samba-style credentials file with username=, password= and domain= lines' -r -F
complete -c smbcp -l auth -d 'How to log on: auto (Kerberos when a ticket or --keytab is at hand and the server offers it, else NTLMv2), kerberos (never falls back to NTLM), ntlm' -r -f -a "auto\t'Kerberos when a ticket or keytab is at hand and the server offers it, else NTLMv2'
kerberos\t'Kerberos only: never falls back to NTLM'
ntlm\t'NTLMv2 only'"
complete -c smbcp -l keytab -d 'Get a Kerberos ticket for --user from this keytab (CI jobs); means --auth kerberos' -r -F
complete -c smbcp -l spn -d 'The server\'s Kerberos service principal (default cifs/SERVER as given), for aliases and IP addresses: cifs/host.example.com or cifs/host@REALM' -r
complete -c smbcp -s s -l subdirs -d 'Copy subdirectories, but not empty ones [/S]'
complete -c smbcp -s e -l empty-dirs -d 'Copy subdirectories, including empty ones (implies --subdirs) [/E]'
complete -c smbcp -l delete-excluded -d 'With --mirror or --purge, also delete destination files and directories that the filters exclude [rsync --delete-excluded]'
complete -c smbcp -l exclude-older -d 'Skip source files older than their destination copy [/XO]'
complete -c smbcp -l exclude-newer -d 'Skip source files newer than their destination copy [/XN]'
complete -c smbcp -l exclude-changed -d 'Skip changed files: same time, different size [/XC]'
complete -c smbcp -l exclude-extra -d 'Ignore extra destination files and directories: not listed, never deleted [/XX]'
complete -c smbcp -l follow-links -d 'Follow symlinks in a local SOURCE (default: skip them, each listed as *Symlink); a link back to a directory on its own path is skipped as a loop. Never follows destination symlinks'
complete -c smbcp -l include-same -d 'Copy files even when they are the same (size and time) [/IS]'
complete -c smbcp -l fft -d 'Compare times with a 2-second tolerance (FAT granularity) [/FFT]'
complete -c smbcp -l mirror -d 'Mirror: --empty-dirs plus --purge [/MIR]'
complete -c smbcp -l purge -d 'Delete destination files and directories that are not in the source [/PURGE]'
complete -c smbcp -l move -d 'Move files: delete each source file once it is copied [/MOV]'
complete -c smbcp -l move-all -d 'Move files and directories: like --move, then remove emptied source directories [/MOVE]'
complete -c smbcp -s l -l list-only -l dry-run -d 'List what would be copied or deleted; change nothing [/L]'
complete -c smbcp -l create -d 'Create the directory tree and zero-length files only [/CREATE]'
complete -c smbcp -l unbuffered -d 'Unbuffered I/O: O_DIRECT locally, unbuffered read/write on SMB 3.0.2+ [/J]'
complete -c smbcp -l verify -d 'Read every copied file back from the destination and compare it with the source (xxh3 per block) before it gets its final name; a mismatch is a failure (VERIFY_MISMATCH)'
complete -c smbcp -l restartable -d 'Restartable mode for every file copied in blocks (default: files of 64 MiB and more): a resume journal in --state-dir records the blocks written, so a retry or the next run after a crash copies only the missing ones [/Z]'
complete -c smbcp -l no-restartable -d 'No restartable mode: an interrupted big file starts over'
complete -c smbcp -l sign -d 'Sign every SMB message, even when the server does not require it (the default)'
complete -c smbcp -l no-sign -d 'Sign SMB messages only when the server requires it: faster, and needed for --zero-copy, but a man in the middle can then change what is copied'
complete -c smbcp -l encrypt -d 'Require SMB 3 encryption for every share (fail when the server cannot)'
complete -c smbcp -l tee -d 'With --log: also write to stdout (without a log, output goes to stdout anyway) [/TEE]'
complete -c smbcp -l no-file-list -d 'Do not list files [/NFL]'
complete -c smbcp -l no-dir-list -d 'Do not list directories [/NDL]'
complete -c smbcp -l no-progress -d 'No progress display (it is only ever shown when stderr is a terminal) [/NP]'
complete -c smbcp -l no-header -d 'No job header (Started, Source, Dest, Files lines) [/NJH]'
complete -c smbcp -l no-summary -d 'No job summary (the closing table) [/NJS]'
complete -c smbcp -l no-class -d 'Do not print file classes ("New File", "Newer", ...) in the lists [/NC]'
complete -c smbcp -l no-size -d 'Do not print sizes (or directory file counts) in the lists [/NS]'
complete -c smbcp -l list-times -d 'List each file\'s last write time (UTC; the source\'s, a destination extra\'s own) [/TS]'
complete -c smbcp -l full-path -d 'List full paths (SOURCE or DEST joined with the relative path) [/FP]'
complete -c smbcp -l bytes -d 'Print sizes as exact byte counts [/BYTES]'
complete -c smbcp -s v -l verbose -d 'More output: also list skipped files; -vv adds debug logging'
complete -c smbcp -s q -l quiet -d 'Less output: no file/dir lists and no summary; errors only'
complete -c smbcp -l password-stdin -d 'Read the password from the first line of stdin'
complete -c smbcp -l empty-password -d 'Accept an empty password (from --password-file, --password-stdin, --auth-file, SMBCP_PASSWORD or the prompt); without it an empty one is an error'
complete -c smbcp -l guest -d 'Log on as guest (no password). A guest session has no key, so its messages are not signed: --guest conflicts with --sign. Without --guest, a logon the server turns into a guest session (a wrong password or unknown user) is refused'
complete -c smbcp -l kerberos -d 'Get a Kerberos ticket for --user with the password (from the usual sources) instead of using the credential cache; means --auth kerberos'
complete -c smbcp -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smbcp -s V -l version -d 'Print version'
