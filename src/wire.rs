//! Byte readers: fixed-width integers at an offset in a byte slice.
//!
//! Netlink fields come in host order, ports in network order, the snapshot
//! format's lengths little-endian.
//!
//! Callers check lengths first (every parser here reports a short buffer as an
//! error before reading), so an offset past the end is a bug and panics. The
//! readers copy into an array: no allocation, and they sit in the socket
//! parser's inner loop, hence `#[inline]`.

#[inline]
fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

/// Host byte order (netlink headers and most sock_diag fields).
#[inline]
pub fn u16_ne(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes(array(b, at))
}

/// Host byte order.
#[inline]
pub fn u32_ne(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(array(b, at))
}

/// Host byte order, signed (the errno of `NLMSG_ERROR`).
#[inline]
pub fn i32_ne(b: &[u8], at: usize) -> i32 {
    i32::from_ne_bytes(array(b, at))
}

/// Network byte order (ports in `inet_diag_sockid`).
#[inline]
pub fn u16_be(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(array(b, at))
}

/// Network byte order (ctnetlink's 32-bit attributes).
#[inline]
pub fn u32_be(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(array(b, at))
}

/// Little-endian (the snapshot header).
#[inline]
pub fn u16_le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(array(b, at))
}

/// Little-endian.
#[inline]
pub fn u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(array(b, at))
}

/// Little-endian.
#[inline]
pub fn u64_le(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(array(b, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_take_the_bytes_at_the_offset() {
        let b = [0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08];
        assert_eq!(u16_be(&b, 1), 0x0102);
        assert_eq!(u16_le(&b, 1), 0x0201);
        assert_eq!(u32_be(&b, 1), 0x0102_0304);
        assert_eq!(u32_le(&b, 1), 0x0403_0201);
        assert_eq!(u64_le(&b, 1), 0x0807_0605_0403_0201);
        assert_eq!(u16_ne(&b, 1), u16::from_ne_bytes([1, 2]));
        assert_eq!(u32_ne(&b, 1), u32::from_ne_bytes([1, 2, 3, 4]));
        assert_eq!(i32_ne(&(-5i32).to_ne_bytes(), 0), -5);
    }

    #[test]
    #[should_panic]
    fn past_the_end_is_a_bug() {
        u32_ne(&[0, 0, 0], 0);
    }
}
