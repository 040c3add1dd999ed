//! The man page `man/smbcp.1`: clap_mangen's sections from the clap
//! definition (NAME, SYNOPSIS, DESCRIPTION, OPTIONS, VERSION) plus EXAMPLES,
//! ENVIRONMENT and EXIT STATUS written here. The VERSION section carries the
//! package version only, so the page does not change with every commit.

use std::io;

/// EXAMPLES, ENVIRONMENT and EXIT STATUS, in roff. `\(rs` is a backslash,
/// `\-` a hyphen that must stay one.
const SECTIONS: &str = r#".SH EXAMPLES
Mirror a share to a local disk with 32 parallel jobs and no retries:
.PP
.RS
.nf
SMBCP_PASSWORD=... smbcp smb://CORP;alice@fs1/projects/2024 /backup/2024 \-\-mirror \-\-mt 32 \-\-retries 0
.fi
.RE
.PP
The same in robocopy spelling (case\-insensitive):
.PP
.RS
.nf
smbcp //fs1/projects/2024 /backup/2024 /MIR /MT:32 /R:0 \-\-user 'CORP\(rsalice'
.fi
.RE
.PP
See what a mirror would copy and delete, changing nothing:
.PP
.RS
.nf
smbcp ./reports '\(rs\(rsfs1\(rsshare\(rsreports' \-\-mirror \-\-dry\-run \-u alice
.fi
.RE
.PP
Upload only PDF and Word files, skipping tmp directories:
.PP
.RS
.nf
smbcp ./reports //fs1/share/reports '*.pdf' '*.docx' \-s \-\-exclude\-dir tmp \-u alice
.fi
.RE
.PP
A bare list of the file names a copy would take, for a script:
.PP
.RS
.nf
smbcp //fs1/share/in ./in \-s \-\-dry\-run /NJH /NJS /NC /NS /NDL
.fi
.RE
.PP
Share to share with a JSON report and robocopy exit codes:
.PP
.RS
.nf
smbcp //fs1/a/x //fs2/b/x \-e \-\-json report.json \-\-exit\-codes robocopy \-\-auth\-file ~/.smbcp\-auth
.fi
.RE
.SH ENVIRONMENT
.TP
.B SMBCP_PASSWORD
The SMB password, used when no \-\-password\-stdin, \-\-password\-file or
\-\-auth\-file gives one; without it, smbcp prompts when stdin is a terminal.
A password is never taken as an argument.
.TP
.B RUST_LOG
Diagnostic logging on stderr, as a tracing filter (for example
smbcp=debug,smb_core=debug); overrides \-v and \-vv.
.SH "EXIT STATUS"
By default:
.TP
.B 0
Success: files were copied, or there was nothing to do (extras alone are not an error).
.TP
.B 1
Some items failed (copy, delete, listing, a file/directory mismatch, deletes refused
by \-\-max\-delete or after a failed copy pass), or the run was interrupted.
.TP
.B 2
Usage error: a bad or unknown flag or value (an unknown robocopy /FLAG too), a bad
path, an unreadable or world\-readable password file, no password.
.TP
.B 3
Fatal: cannot connect or authenticate, share not found, source missing or not a
directory, DEST cannot be created.
.PP
With \-\-exit\-codes robocopy, robocopy's bitmask: 1 files were copied, 2 extra
files or directories were found, 4 mismatches were found, 8 some items failed,
16 fatal or usage error (nothing was done). 0 means nothing was copied and
nothing went wrong.
.PP
On a usage or fatal error nothing in the destination is touched.
"#;

/// Renders the whole man page.
pub(crate) fn render(w: &mut dyn io::Write) -> io::Result<()> {
    // The commit and build in `--version` would make the page stale at every commit.
    let cmd = smbcp::command().long_version(None::<&str>);
    let man = clap_mangen::Man::new(cmd);
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;
    w.write_all(SECTIONS.as_bytes())?;
    man.render_version_section(w)
}

#[cfg(test)]
mod tests {
    #[test]
    fn has_the_extra_sections_and_no_commit() {
        let mut buf = Vec::new();
        super::render(&mut buf).unwrap();
        let page = String::from_utf8(buf).unwrap();
        for want in [
            ".SH EXAMPLES",
            ".SH ENVIRONMENT",
            ".SH \"EXIT STATUS\"",
            "\\-\\-dry\\-run",
            "SMBCP_PASSWORD",
            ".SH OPTIONS",
            ".SH VERSION",
        ] {
            assert!(page.contains(want), "man page lacks {want}");
        }
        assert!(
            !page.contains("commit:"),
            "the page would change with every commit"
        );
    }
}
