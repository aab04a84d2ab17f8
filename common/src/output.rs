//! Writing to standard output from the command-line tools.
//!
//! `println!` panics when standard output is closed, as when a technician
//! pipes `motcua dossier search ... | head`. The [`outln!`](crate::outln)
//! and [`out!`](crate::out) macros write the same way but end the program
//! quietly (exit code 0) on a closed pipe, and with a one-line error on any
//! other write failure.

use std::io;

/// Ends the program after a failed write to standard output.
pub fn failed(e: io::Error) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(1);
}

/// `println!` that ends the program quietly when standard output is closed.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        if let Err(e) = writeln!(::std::io::stdout().lock(), $($arg)*) {
            $crate::output::failed(e);
        }
    }};
}

/// `print!` that ends the program quietly when standard output is closed.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        if let Err(e) = write!(::std::io::stdout().lock(), $($arg)*) {
            $crate::output::failed(e);
        }
    }};
}
