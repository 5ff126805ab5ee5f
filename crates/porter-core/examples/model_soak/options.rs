//! The flags of the model check at scale, and its random numbers.

pub(crate) struct Options {
    pub(crate) ops: u64,
    pub(crate) threads: usize,
    pub(crate) seed: u64,
    pub(crate) round_ops: u64,
    pub(crate) sync_every: u64,
}

pub(crate) const USAGE: &str =
    "usage: model_soak [--ops N] [--threads N] [--seed N] [--round-ops N] [--sync-every N] (see the file's header)";

pub(crate) fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        ops: 10_000_000,
        threads: 4,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        round_ops: 250_000,
        sync_every: 10_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n: u64 = value
            .replace('_', "")
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}"))?;
        match flag.as_str() {
            "--ops" => o.ops = n,
            "--threads" => o.threads = n as usize,
            "--seed" => o.seed = n,
            "--round-ops" => o.round_ops = n,
            "--sync-every" => o.sync_every = n,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if o.threads == 0 || o.threads > 64 || o.ops == 0 || o.round_ops == 0 || o.sync_every == 0 {
        return Err("--ops, --round-ops and --sync-every must be positive, --threads 1 to 64".into());
    }
    Ok(o)
}

/// splitmix64: small, fast, and the same stream for the same seed everywhere.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next();
        r
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    pub(crate) fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}
