
use builtin;
use str;

set edit:completion:arg-completer[smbcp] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'smbcp'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'smbcp'= {
            cand --lev 'Only copy the top N levels of the source tree (1 = SOURCE itself) [/LEV:n]'
            cand --include 'Only copy files whose name (or, with a `/`, relative path) matches GLOB; repeatable, together with FILE_GLOB any one match is enough [rsync --include]'
            cand --files-from 'Only copy the files listed in FILE, one path relative to SOURCE a line ("-": stdin; empty lines and lines starting with # are skipped) [rsync --files-from]'
            cand --include-attr 'Only copy files with at least one of these attributes: R A S H C N E T O [/IA:attrs]'
            cand --exclude-attr 'Skip files with any of these attributes: R A S H C N E T O [/XA:attrs]'
            cand --exclude-file 'Exclude files whose name or relative path matches GLOB; repeatable [/XF]'
            cand --exclude-dir 'Exclude directories whose name or relative path matches GLOB; repeatable [/XD]'
            cand --max-size 'Skip files bigger than SIZE (bytes, or with K/M/G/T suffix) [/MAX:n]'
            cand --min-size 'Skip files smaller than SIZE [/MIN:n]'
            cand --max-age 'Skip files older than AGE: days (n < 1900), a date YYYYMMDD, or a duration like 12h [/MAXAGE:n]'
            cand --min-age 'Skip files newer than AGE (same forms as --max-age) [/MINAGE:n]'
            cand --max-delete 'Refuse to delete anything when more than N items would be deleted ("unlimited" to allow any number) [default: 1000]'
            cand --mt 'Number of concurrent copy jobs (files or blocks of big files), 1–128 [/MT:n]'
            cand --zero-copy 'Move file data between socket and local file inside the kernel (Linux, unsigned sessions): auto = downloads, and uploads to servers not on this machine'
            cand --temp-name 'Name of the temporary file each file is written as before the rename over its final name: {name} is the file''s name, {rand} (required) 8 random hex digits. Default `.{name}.smbcp-{rand}.tmp` (on an SMB destination `{name}.smbcp-{rand}` in `.smbcp-tmp` at DEST''s root), then `{name}.smbcp-{rand}` beside the file if the server refuses that (e.g. Samba `veto files = /*.tmp/`); with this flag, only PATTERN'
            cand --retries 'Retries for each file after a transient error [/R:n]'
            cand --wait 'Wait before the first retry (doubles each retry, with jitter), e.g. 2s, 500ms [/W:n]'
            cand --timeout 'Timeout for connecting and for each SMB request, e.g. 30s'
            cand --state-dir 'Where resume journals live (default $XDG_STATE_HOME/smbcp, else ~/.local/state/smbcp)'
            cand --reconnect-for 'How long to keep dialling a server again after its connection was lost (files in flight wait, then go on where they were), e.g. 30s, 10m; 0 to fail at once'
            cand --max-dir-entries 'Fail a directory listing that returns more than N entries (a server that never ends a listing must not make smbcp list forever) [default: 1000000]'
            cand --bwlimit 'Limit total throughput to RATE bytes per second (K/M/G suffixes, or 100Mbit) [/IPG]'
            cand --copy 'What to copy for files: D=data, A=attributes, T=timestamps [/COPY:DAT]'
            cand --dcopy 'What to copy for directories: D=data, A=attributes, T=timestamps [/DCOPY:T]'
            cand --log 'Write the file list and summary to FILE instead of stdout (overwrite; UTF-8, so robocopy''s /UNILOG:file is the same) [/LOG:file]'
            cand --log-append 'Like --log, appending to FILE [/LOG+:file, /UNILOG+:file]'
            cand --json 'Write a JSON report (summary and per-file failures) to FILE, or "-" for stdout'
            cand --events 'Write live events as NDJSON (one JSON object a line: file start/done, retry, reconnect, failure, delete, summary) to FILE, or "-" for stdout'
            cand --exit-codes 'Exit-code convention'
            cand -u 'SMB user as [DOMAIN\]NAME (or put it in the URL: smb://DOMAIN;NAME@server/share)'
            cand --user 'SMB user as [DOMAIN\]NAME (or put it in the URL: smb://DOMAIN;NAME@server/share)'
            cand --password-file 'Read the password from the first line of FILE (refused when group/others can read it)'
            cand --auth-file 'Samba-style credentials file with username=, password= and domain= lines'
            cand --auth 'How to log on: auto (Kerberos when a ticket or --keytab is at hand and the server offers it, else NTLMv2), kerberos (never falls back to NTLM), ntlm'
            cand --keytab 'Get a Kerberos ticket for --user from this keytab (CI jobs); means --auth kerberos'
            cand --spn 'The server''s Kerberos service principal (default cifs/SERVER as given), for aliases and IP addresses: cifs/host.example.com or cifs/host@REALM'
            cand -s 'Copy subdirectories, but not empty ones [/S]'
            cand --subdirs 'Copy subdirectories, but not empty ones [/S]'
            cand -e 'Copy subdirectories, including empty ones (implies --subdirs) [/E]'
            cand --empty-dirs 'Copy subdirectories, including empty ones (implies --subdirs) [/E]'
            cand --delete-excluded 'With --mirror or --purge, also delete destination files and directories that the filters exclude [rsync --delete-excluded]'
            cand --exclude-older 'Skip source files older than their destination copy [/XO]'
            cand --exclude-newer 'Skip source files newer than their destination copy [/XN]'
            cand --exclude-changed 'Skip changed files: same time, different size [/XC]'
            cand --exclude-extra 'Ignore extra destination files and directories: not listed, never deleted [/XX]'
            cand --follow-links 'Follow symlinks in a local SOURCE (default: skip them, each listed as *Symlink); a link back to a directory on its own path is skipped as a loop. Never follows destination symlinks'
            cand --include-same 'Copy files even when they are the same (size and time) [/IS]'
            cand --fft 'Compare times with a 2-second tolerance (FAT granularity) [/FFT]'
            cand --mirror 'Mirror: --empty-dirs plus --purge [/MIR]'
            cand --purge 'Delete destination files and directories that are not in the source [/PURGE]'
            cand --move 'Move files: delete each source file once it is copied [/MOV]'
            cand --move-all 'Move files and directories: like --move, then remove emptied source directories [/MOVE]'
            cand -l 'List what would be copied or deleted; change nothing [/L]'
            cand --list-only 'List what would be copied or deleted; change nothing [/L]'
            cand --dry-run 'List what would be copied or deleted; change nothing [/L]'
            cand --create 'Create the directory tree and zero-length files only [/CREATE]'
            cand --unbuffered 'Unbuffered I/O: O_DIRECT locally, unbuffered read/write on SMB 3.0.2+ [/J]'
            cand --verify 'Read every copied file back from the destination and compare it with the source (xxh3 per block) before it gets its final name; a mismatch is a failure (VERIFY_MISMATCH)'
            cand --restartable 'Restartable mode for every file copied in blocks (default: files of 64 MiB and more): a resume journal in --state-dir records the blocks written, so a retry or the next run after a crash copies only the missing ones [/Z]'
            cand --no-restartable 'No restartable mode: an interrupted big file starts over'
            cand --sign 'Sign every SMB message, even when the server does not require it (the default)'
            cand --no-sign 'Sign SMB messages only when the server requires it: faster, and needed for --zero-copy, but a man in the middle can then change what is copied'
            cand --encrypt 'Require SMB 3 encryption for every share (fail when the server cannot)'
            cand --tee 'With --log: also write to stdout (without a log, output goes to stdout anyway) [/TEE]'
            cand --no-file-list 'Do not list files [/NFL]'
            cand --no-dir-list 'Do not list directories [/NDL]'
            cand --no-progress 'No progress display (it is only ever shown when stderr is a terminal) [/NP]'
            cand --no-header 'No job header (Started, Source, Dest, Files lines) [/NJH]'
            cand --no-summary 'No job summary (the closing table) [/NJS]'
            cand --no-class 'Do not print file classes ("New File", "Newer", ...) in the lists [/NC]'
            cand --no-size 'Do not print sizes (or directory file counts) in the lists [/NS]'
            cand --list-times 'List each file''s last write time (UTC; the source''s, a destination extra''s own) [/TS]'
            cand --full-path 'List full paths (SOURCE or DEST joined with the relative path) [/FP]'
            cand --bytes 'Print sizes as exact byte counts [/BYTES]'
            cand -v 'More output: also list skipped files; -vv adds debug logging'
            cand --verbose 'More output: also list skipped files; -vv adds debug logging'
            cand -q 'Less output: no file/dir lists and no summary; errors only'
            cand --quiet 'Less output: no file/dir lists and no summary; errors only'
            cand --password-stdin 'Read the password from the first line of stdin'
            cand --empty-password 'Accept an empty password (from --password-file, --password-stdin, --auth-file, SMBCP_PASSWORD or the prompt); without it an empty one is an error'
            cand --guest 'Log on as guest (no password). A guest session has no key, so its messages are not signed: --guest conflicts with --sign. Without --guest, a logon the server turns into a guest session (a wrong password or unknown user) is refused'
            cand --kerberos 'Get a Kerberos ticket for --user with the password (from the usual sources) instead of using the credential cache; means --auth kerberos'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
    ]
    $completions[$command]
}
