// A plain (non-async) handler may stream an upload with blocking reads.
use std::io::Read;

use emmer::{TftpError, Upload, route_write};

#[route_write(r"logs/.+")]
fn collect(filename: &str, mut upload: Upload) -> Result<(), TftpError> {
    let mut text = String::new();
    upload
        .read_to_string(&mut text)
        .map_err(|_| TftpError::illegal_operation("logs are UTF-8 text"))?;
    if text.is_empty() {
        return Err(TftpError::illegal_operation(format!("{filename}: empty log")));
    }
    Ok(())
}

fn main() {}
