//! The system description attached to every result, and energy.
//!
//! Everything is read from the machine, never assumed: a sensor or file that
//! cannot be read is reported as absent with the reason. Energy comes from
//! RAPL through Linux powercap (CPU packages, `energy_uj` counters) and, only
//! when `nvidia-smi` is present, from NVML's board power sampled at 10 Hz and
//! integrated. No figure is estimated from a TDP or a datasheet.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The hall the capacity line is about.
pub const HALL_MW: f64 = 40.0;
/// The PUE assumed for the capacity line (stated in every result).
pub const ASSUMED_PUE: f64 = 1.3;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SystemInfo {
    pub cpu_model: String,
    pub cpu_cores: usize,
    pub memory_gib: f64,
    pub accelerator: String,
    pub driver: String,
    pub onnxruntime: String,
    pub execution_provider: String,
    pub model_sha256: String,
    pub os: String,
}

fn read(p: &str) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// CPU, memory, accelerator and driver of this machine.
pub fn describe_host() -> SystemInfo {
    let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let cpu_cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let memory_gib = read("/proc/meminfo")
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| (kb / 1024.0 / 1024.0 * 10.0).round() / 10.0);
    let (accelerator, driver) = match Command::new("nvidia-smi")
        .args(["--query-gpu=name,driver_version", "--format=csv,noheader"])
        .output()
    {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let first = text.lines().next().unwrap_or_default();
            let (n, d) = first.split_once(',').unwrap_or((first, ""));
            let count = text.lines().filter(|l| !l.trim().is_empty()).count();
            (
                format!("{} x{count}", n.trim()),
                format!("NVIDIA {}", d.trim()),
            )
        }
        _ => ("none detected (CPU only)".into(), "n/a".into()),
    };
    let os = read("/proc/sys/kernel/osrelease")
        .map(|r| format!("Linux {}", r.trim()))
        .unwrap_or_else(|| std::env::consts::OS.to_owned());
    SystemInfo {
        cpu_model,
        cpu_cores,
        memory_gib,
        accelerator,
        driver,
        os,
        ..SystemInfo::default()
    }
}

/// SHA-256 of a file, hex.
pub fn sha256_file(p: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(p)?;
    Ok(data_encoding::HEXLOWER.encode(&Sha256::digest(&bytes)))
}

/// One energy source's reading over a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sensor {
    pub name: String,
    /// `None`: absent or unreadable (see `note`).
    pub joules: Option<f64>,
    pub note: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Energy {
    pub sensors: Vec<Sensor>,
    pub joules: Option<f64>,
    pub joules_per_inference: Option<f64>,
    pub inferences_per_joule: Option<f64>,
    /// The 40 MW hall line, or why it cannot be given.
    pub capacity: String,
}

struct RaplZone {
    name: String,
    energy: PathBuf,
    max_range: u64,
    start: u64,
}

fn rapl_zones() -> Result<Vec<RaplZone>, String> {
    let root = Path::new("/sys/class/powercap");
    let entries = std::fs::read_dir(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let mut zones = Vec::new();
    let mut last_err = String::from("no intel-rapl package zones");
    for e in entries.filter_map(Result::ok) {
        let dir = e.path();
        let fname = e.file_name().to_string_lossy().into_owned();
        // Top-level package zones only (intel-rapl:0, not intel-rapl:0:0),
        // so sub-domains are not counted twice. AMD exposes the same names.
        if !fname.starts_with("intel-rapl:") || fname.matches(':').count() != 1 {
            continue;
        }
        let energy = dir.join("energy_uj");
        match std::fs::read_to_string(&energy) {
            Ok(v) => {
                let Ok(start) = v.trim().parse::<u64>() else {
                    continue;
                };
                let max_range = std::fs::read_to_string(dir.join("max_energy_range_uj"))
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(u64::MAX);
                let name = std::fs::read_to_string(dir.join("name"))
                    .map(|s| s.trim().to_owned())
                    .unwrap_or(fname);
                zones.push(RaplZone {
                    name,
                    energy,
                    max_range,
                    start,
                });
            }
            Err(e) => last_err = format!("{}: {e}", energy.display()),
        }
    }
    if zones.is_empty() {
        Err(last_err)
    } else {
        Ok(zones)
    }
}

/// The NVML sampling thread: its stop flag and its integrated joules.
type GpuSampler = (
    Arc<AtomicBool>,
    std::thread::JoinHandle<Result<f64, String>>,
);

/// Measures energy between `start` and `stop`.
pub struct EnergyMeter {
    started: Instant,
    rapl: Result<Vec<RaplZone>, String>,
    gpu: Option<GpuSampler>,
}

impl std::fmt::Debug for EnergyMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnergyMeter").finish_non_exhaustive()
    }
}

fn gpu_power_watts() -> Result<f64, String> {
    let o = Command::new("nvidia-smi")
        .args(["--query-gpu=power.draw", "--format=csv,noheader,nounits"])
        .output()
        .map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err("nvidia-smi failed".into());
    }
    let text = String::from_utf8_lossy(&o.stdout);
    let mut sum = 0.0;
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        sum += l
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("power.draw not readable: {}", l.trim()))?;
    }
    Ok(sum)
}

impl EnergyMeter {
    pub fn start() -> EnergyMeter {
        let gpu = if gpu_power_watts().is_ok() {
            let stop = Arc::new(AtomicBool::new(false));
            let s2 = Arc::clone(&stop);
            let h = std::thread::spawn(move || {
                let mut joules = 0.0;
                let mut last = Instant::now();
                let mut last_w = gpu_power_watts()?;
                while !s2.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    let w = gpu_power_watts()?;
                    let now = Instant::now();
                    // Trapezoid between samples.
                    joules += f64::midpoint(w, last_w) * (now - last).as_secs_f64();
                    last = now;
                    last_w = w;
                }
                Ok(joules)
            });
            Some((stop, h))
        } else {
            None
        };
        EnergyMeter {
            started: Instant::now(),
            rapl: rapl_zones(),
            gpu,
        }
    }

    /// Stops and attributes the energy to `inferences` samples.
    pub fn stop(self, inferences: u64) -> Energy {
        let mut sensors = Vec::new();
        let secs = self.started.elapsed().as_secs_f64();
        match self.rapl {
            Ok(zones) => {
                for z in zones {
                    let joules = std::fs::read_to_string(&z.energy)
                        .ok()
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|end| {
                            let uj = if end >= z.start {
                                end - z.start
                            } else {
                                z.max_range.saturating_sub(z.start) + end
                            };
                            uj as f64 / 1e6
                        });
                    sensors.push(Sensor {
                        name: format!("RAPL {}", z.name),
                        joules,
                        note: "CPU package energy via /sys/class/powercap".into(),
                    });
                }
            }
            Err(why) => sensors.push(Sensor {
                name: "RAPL (CPU)".into(),
                joules: None,
                note: format!("absent: {why}"),
            }),
        }
        match self.gpu {
            Some((stop, h)) => {
                stop.store(true, Ordering::Relaxed);
                let r = h.join().unwrap_or_else(|_| Err("sampler stopped".into()));
                sensors.push(match r {
                    Ok(j) => Sensor {
                        name: "NVML GPU board power".into(),
                        joules: Some(j),
                        note: "nvidia-smi power.draw sampled at 10 Hz, integrated".into(),
                    },
                    Err(e) => Sensor {
                        name: "NVML GPU board power".into(),
                        joules: None,
                        note: format!("absent: {e}"),
                    },
                });
            }
            None => sensors.push(Sensor {
                name: "NVML (GPU)".into(),
                joules: None,
                note: "absent: no nvidia-smi / NVML on this machine".into(),
            }),
        }
        let read: Vec<f64> = sensors.iter().filter_map(|s| s.joules).collect();
        let joules = if read.is_empty() {
            None
        } else {
            Some(read.iter().sum::<f64>())
        };
        let jpi = joules
            .filter(|_| inferences > 0)
            .map(|j| j / inferences as f64);
        let ipj = jpi.filter(|j| *j > 0.0).map(|j| 1.0 / j);
        let capacity = capacity_line(ipj);
        let _ = secs;
        Energy {
            sensors,
            joules,
            joules_per_inference: jpi,
            inferences_per_joule: ipj,
            capacity,
        }
    }
}

/// At `ipj` inferences per joule of IT energy, inferences per day in one
/// 40 MW hall at the assumed PUE.
pub fn capacity_line(ipj: Option<f64>) -> String {
    match ipj {
        Some(ipj) => {
            let per_day = ipj * HALL_MW * 1e6 / ASSUMED_PUE * 86_400.0;
            format!(
                "one {HALL_MW:.0} MW hall at PUE {ASSUMED_PUE} (assumed) would serve {per_day:.3e} inferences/day at the measured {ipj:.1} inferences/J (measured sensors only)"
            )
        }
        None => format!(
            "capacity of a {HALL_MW:.0} MW hall: not computed, no energy sensor was readable on this machine"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_uses_the_stated_pue() {
        // 100 inferences/J × 40e6 W / 1.3 × 86400 s.
        let l = capacity_line(Some(100.0));
        assert!(l.contains("2.658e14"), "{l}");
        assert!(l.contains("PUE 1.3"), "{l}");
        assert!(capacity_line(None).contains("not computed"));
    }
}
