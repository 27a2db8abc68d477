//! Small writers for heads: reason phrases, numbers, the cached `Date` value, request ids
//! and a client address as text. All but `ip_text` write into caller-owned buffers.

use std::cell::Cell;

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// `HTTP/1.1 NNN Reason` and CRLF, for responses ringway makes itself.
#[inline]
pub fn status_line(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(b"HTTP/1.1 ");
    put_u64(out, status as u64);
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[inline]
pub fn put_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// `ip` as `Display` writes it, for IPv4 (nearly every client) without the formatting
/// machinery: this runs once per accepted connection.
pub fn ip_text(ip: std::net::IpAddr) -> String {
    let std::net::IpAddr::V4(v4) = ip else { return ip.to_string() };
    let mut s = String::with_capacity(15);
    for (i, o) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        if o >= 100 {
            s.push(char::from(b'0' + o / 100));
        }
        if o >= 10 {
            s.push(char::from(b'0' + o / 10 % 10));
        }
        s.push(char::from(b'0' + o % 10));
    }
    s
}

/// `Date` header value (IMF-fixdate), recomputed at most once per second per worker.
pub struct DateCache {
    second: Cell<i64>,
    text: Cell<[u8; 29]>,
}

impl Default for DateCache {
    fn default() -> Self {
        DateCache { second: Cell::new(i64::MIN), text: Cell::new([b' '; 29]) }
    }
}

impl DateCache {
    #[inline]
    pub fn get(&self) -> [u8; 29] {
        let now = crate::clock::unix_now();
        if now != self.second.get() {
            self.second.set(now);
            self.text.set(imf_fixdate(now));
        }
        self.text.get()
    }
}

/// Formats seconds since the epoch as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn imf_fixdate(secs: i64) -> [u8; 29] {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let wday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let (y, mon, d) = crate::clock::civil_from_days(days);
    const DAYS: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
    const MONTHS: [&[u8; 3]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[wday]);
    two(&mut out[5..7], d);
    out[8..11].copy_from_slice(MONTHS[(mon - 1) as usize]);
    let y = y.clamp(0, 9999);
    two(&mut out[12..14], y / 100);
    two(&mut out[14..16], y % 100);
    two(&mut out[17..19], h);
    two(&mut out[20..22], m);
    two(&mut out[23..25], s);
    out
}

fn two(dst: &mut [u8], v: i64) {
    dst[0] = b'0' + (v / 10) as u8;
    dst[1] = b'0' + (v % 10) as u8;
}

/// Per-worker generator of request ids in UUID v4 form (wyrand; not for secrets).
pub struct RequestIds {
    state: Cell<u64>,
}

impl RequestIds {
    pub fn new(seed: u64) -> Self {
        RequestIds { state: Cell::new(seed | 1) }
    }

    #[inline]
    fn next(&self) -> u64 {
        let s = self.state.get().wrapping_add(0xa076_1d64_78bd_642f);
        self.state.set(s);
        let t = (s as u128).wrapping_mul((s ^ 0xe703_7ed1_a0b4_28db) as u128);
        (t as u64) ^ ((t >> 64) as u64)
    }

    /// Writes a fresh id (36 bytes) into `out`.
    #[inline]
    pub fn write(&self, out: &mut [u8; 36]) {
        let a = self.next();
        let b = self.next();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&a.to_le_bytes());
        bytes[8..].copy_from_slice(&b.to_le_bytes());
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        // Where each byte's two hex digits go in 8-4-4-4-12 (constant: the loop unrolls).
        const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
        for (&at, byte) in AT.iter().zip(bytes) {
            out[at] = HEX[(byte >> 4) as usize];
            out[at + 1] = HEX[(byte & 15) as usize];
        }
        (out[8], out[13], out[18], out[23]) = (b'-', b'-', b'-', b'-');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_text_matches_display() {
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        for o in 0..=255u8 {
            for ip in [Ipv4Addr::new(o, 0, 9, 10), Ipv4Addr::new(99, o, 100, 255), Ipv4Addr::new(1, 2, o, o)] {
                assert_eq!(ip_text(IpAddr::V4(ip)), ip.to_string());
            }
        }
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert_eq!(ip_text(v6), "2001:db8::1");
    }

    #[test]
    fn dates() {
        assert_eq!(&imf_fixdate(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&imf_fixdate(1_709_251_199), b"Thu, 29 Feb 2024 23:59:59 GMT");
    }

    #[test]
    fn request_ids_are_uuid_v4_and_differ() {
        let g = RequestIds::new(42);
        let mut a = [0u8; 36];
        let mut b = [0u8; 36];
        g.write(&mut a);
        g.write(&mut b);
        assert_ne!(a, b);
        let s = std::str::from_utf8(&a).unwrap();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert_eq!(s.matches('-').count(), 4);
    }

    #[test]
    fn numbers() {
        let mut v = Vec::new();
        put_u64(&mut v, 0);
        put_u64(&mut v, 18_446_744_073_709_551_615);
        assert_eq!(v, b"018446744073709551615");
    }
}
