//! The `format` file of a trace event, parsed into a field table.
//!
//! The kernel describes each event's binary record there, one line per field:
//! `field:__u16 sport; offset:24; size:2; signed:0;`. Nothing about the layout is
//! assumed: [`EventFormat::decode`] reads fields by the offsets found here, and
//! [`EventFormat::check_state_change`] refuses a kernel whose event lacks a field
//! `who` depends on, before anything is enabled.

use std::fmt;

/// One field of an event record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// The C type as written, without the array suffix (`__u8`, `const void *`).
    pub ctype: String,
    /// Element count for arrays (`saddr[4]` → 4).
    pub array_len: Option<usize>,
    pub offset: usize,
    pub size: usize,
    pub signed: bool,
}

/// An event's name, numeric id, fields and print format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFormat {
    pub name: String,
    pub id: u32,
    pub fields: Vec<Field>,
    pub print_fmt: String,
}

/// The keys of the event's print format the parser reads.
pub const TEXT_KEYS: [&str; 9] = [
    "family", "sport", "dport", "saddr", "daddr", "saddrv6", "daddrv6", "oldstate", "newstate",
];

/// Why a format file or a record could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

fn err<T>(msg: impl Into<String>) -> Result<T, FormatError> {
    Err(FormatError(msg.into()))
}

/// The fields `who` reads, with the sizes it can interpret.
const STATE_CHANGE_FIELDS: [(&str, &[usize]); 10] = [
    ("oldstate", &[4]),
    ("newstate", &[4]),
    ("sport", &[2]),
    ("dport", &[2]),
    ("family", &[2]),
    ("protocol", &[2]),
    ("saddr", &[4]),
    ("daddr", &[4]),
    ("saddr_v6", &[16]),
    ("daddr_v6", &[16]),
];

impl EventFormat {
    /// Parses the text of an event's `format` file.
    pub fn parse(text: &str) -> Result<EventFormat, FormatError> {
        let mut name = None;
        let mut id = None;
        let mut fields = Vec::new();
        let mut print_fmt = None;
        for (n, line) in text.lines().enumerate() {
            let t = line.trim();
            if let Some(v) = t.strip_prefix("name:") {
                name = Some(v.trim().to_string());
            } else if let Some(v) = t.strip_prefix("ID:") {
                id =
                    Some(v.trim().parse::<u32>().map_err(|_| {
                        FormatError(format!("line {}: bad ID '{}'", n + 1, v.trim()))
                    })?);
            } else if t.starts_with("field:") {
                fields
                    .push(parse_field(t).map_err(|e| FormatError(format!("line {}: {e}", n + 1)))?);
            } else if let Some(v) = t.strip_prefix("print fmt:") {
                print_fmt = Some(v.trim().to_string());
            }
        }
        let Some(name) = name else {
            return err("no 'name:' line");
        };
        let Some(id) = id else {
            return err("no 'ID:' line");
        };
        if fields.is_empty() {
            return err("no 'field:' lines");
        }
        Ok(EventFormat {
            name,
            id,
            fields,
            print_fmt: print_fmt.unwrap_or_default(),
        })
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Checks that this is the state-change event `who` understands: every
    /// field it reads is present with a size it can interpret, and the text
    /// format prints the `key=value` pairs the text parser expects.
    pub fn check_state_change(&self) -> Result<(), FormatError> {
        for (name, sizes) in STATE_CHANGE_FIELDS {
            match self.field(name) {
                None => return err(format!("event {} has no field '{name}'", self.name)),
                Some(f) if !sizes.contains(&f.size) => {
                    return err(format!(
                        "event {}: field '{name}' has size {}, expected {:?}",
                        self.name, f.size, sizes
                    ));
                }
                Some(_) => {}
            }
        }
        for key in TEXT_KEYS {
            if !self.print_fmt.contains(&format!("{key}=")) {
                return err(format!(
                    "event {}: print format does not show '{key}='",
                    self.name
                ));
            }
        }
        Ok(())
    }
}

/// `field:TYPE NAME[N]; offset:O; size:S; signed:0|1;`
fn parse_field(line: &str) -> Result<Field, String> {
    let mut decl = None;
    let (mut offset, mut size, mut signed) = (None, None, None);
    for part in line.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once(':') else {
            return Err(format!("'{part}' is not key:value"));
        };
        let num = |v: &str| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| format!("{k}: '{}' is not a number", v.trim()))
        };
        match k.trim() {
            "field" => decl = Some(v.trim().to_string()),
            "offset" => offset = Some(num(v)?),
            "size" => size = Some(num(v)?),
            "signed" => signed = Some(num(v)? != 0),
            _ => {}
        }
    }
    let decl = decl.ok_or("no field declaration")?;
    let (ctype, mut name) = match decl.rsplit_once([' ', '*']) {
        Some((t, n)) => (decl[..t.len() + 1].trim().to_string(), n.to_string()),
        None => return Err(format!("declaration '{decl}' has no type")),
    };
    let mut array_len = None;
    if let Some(open) = name.find('[') {
        let inner = name[open + 1..]
            .strip_suffix(']')
            .ok_or_else(|| format!("bad array in '{decl}'"))?;
        array_len = Some(
            inner
                .parse::<usize>()
                .map_err(|_| format!("bad array length in '{decl}'"))?,
        );
        name.truncate(open);
    }
    if name.is_empty() {
        return Err(format!("declaration '{decl}' has no name"));
    }
    let offset = offset.ok_or("no offset")?;
    let size = size.ok_or("no size")?;
    if offset.checked_add(size).is_none_or(|end| end > 1 << 16) {
        return Err(format!(
            "field '{name}' offset {offset} size {size} out of range"
        ));
    }
    if let Some(n) = array_len
        && (n == 0 || size % n != 0)
    {
        return Err(format!(
            "field '{name}': size {size} is not a multiple of {n} elements"
        ));
    }
    Ok(Field {
        name,
        ctype,
        array_len,
        offset,
        size,
        signed: signed.ok_or("no signed")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const FIXTURE: &str = include_str!("../../tests/fixtures/trace/inet_sock_set_state.format");

    #[test]
    fn parses_this_kernels_format() {
        let f = EventFormat::parse(FIXTURE).unwrap();
        assert_eq!(f.name, "inet_sock_set_state");
        assert_eq!(f.id, 2287);
        let sport = f.field("sport").unwrap();
        assert_eq!((sport.offset, sport.size, sport.signed), (24, 2, false));
        let ns = f.field("newstate").unwrap();
        assert_eq!(
            (ns.ctype.as_str(), ns.offset, ns.size, ns.signed),
            ("int", 20, 4, true)
        );
        let v6 = f.field("saddr_v6").unwrap();
        assert_eq!(
            (v6.ctype.as_str(), v6.array_len, v6.offset),
            ("__u8", Some(16), 40)
        );
        assert_eq!(f.field("skaddr").unwrap().ctype, "const void *");
        f.check_state_change().unwrap();
    }

    #[test]
    fn missing_or_odd_fields_are_refused() {
        let no_sport = FIXTURE.replace("__u16 sport;", "__u16 xport;");
        let e = EventFormat::parse(&no_sport)
            .unwrap()
            .check_state_change()
            .unwrap_err();
        assert!(e.0.contains("'sport'"), "{e}");
        let wide = FIXTURE.replace("offset:24;\tsize:2;", "offset:24;\tsize:8;");
        assert!(
            EventFormat::parse(&wide)
                .unwrap()
                .check_state_change()
                .is_err()
        );
        for bad in [
            "",
            "name: x\nID: 1\n",
            "name: x\nID: z\n\tfield:int a;\toffset:0;\tsize:4;\tsigned:1;",
            "name: x\nID: 1\n\tfield:int a;\toffset:q;\tsize:4;\tsigned:1;",
            "name: x\nID: 1\n\tfield:int a[3];\toffset:0;\tsize:4;\tsigned:1;",
            "name: x\nID: 1\n\tfield:int a;\toffset:18446744073709551615;\tsize:4;\tsigned:1;",
            "name: x\nID: 1\n\tfield:a;\toffset:0;\tsize:4;\tsigned:1;",
        ] {
            assert!(EventFormat::parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}

#[cfg(test)]
mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn arbitrary_format_text_never_panics(s in "\\PC{0,300}") {
            let _ = EventFormat::parse(&s);
        }
    }
}
