//! Looking through an error's chain of sources, where libraries wrap the cause that matters.

use std::error::Error;

/// The first error of type `T` in `err`'s chain, `err` included.
pub fn find<'a, T: Error + 'static>(err: &'a (dyn Error + 'static)) -> Option<&'a T> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

/// Whether a body went past http-body's length limit somewhere in this chain.
pub fn is_length_limit(err: &(dyn Error + 'static)) -> bool {
    find::<http_body_util::LengthLimitError>(err).is_some()
}
