//! The GPU backend, laid out as the wgpu compute examples are: one
//! long-lived [`GpuContext`] (device, queue, pipeline, bind groups,
//! buffers) built once, the shader `shaders/sha256d.wgsl` loaded at compile
//! time, and [`run_batch`], the one-dispatch call that tests make with known
//! answers. [`GpuContext::submit`] and [`GpuContext::collect`] keep two
//! dispatches in flight for mining: the next is queued before the previous
//! one is read back, so the GPU never waits for the host.

use std::sync::mpsc;

use wgpu::util::DeviceExt;

use crate::header_work::HeaderWork;

/// The WGSL source, compiled into the binary.
pub const SHADER_SOURCE: &str = include_str!("../../shaders/sha256d.wgsl");

/// Invocations per workgroup (the shader's `@workgroup_size`).
pub const WORKGROUP_SIZE: u32 = 256;
/// The most workgroups one dimension of a dispatch may have (WebGPU's floor).
pub const MAX_WORKGROUPS: u32 = 65_535;
/// Result slots in the shader's buffer (`MAX_RESULTS`).
pub const MAX_RESULTS: u32 = 1023;
/// The largest nonce count one dispatch takes: the shader's offsets stay
/// well inside u32 (WGSL has no u64).
pub const MAX_DISPATCH: u32 = 1 << 31;

const PARAMS_SIZE: u64 = 96;
const RESULTS_SIZE: u64 = 4 * (1 + MAX_RESULTS as u64);

/// Why the GPU cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No adapter matches the choice.
    #[error("no GPU adapter found ({0})")]
    NoAdapter(String),
    /// The device could not be opened.
    #[error("cannot open a device on {adapter}")]
    Device {
        /// The adapter's name.
        adapter: String,
        /// Why.
        #[source]
        source: wgpu::RequestDeviceError,
    },
    /// Waiting for the GPU failed.
    #[error("waiting for the GPU failed")]
    Poll(#[from] wgpu::PollError),
    /// The result buffer could not be mapped.
    #[error("reading back results failed")]
    Map(#[from] wgpu::BufferAsyncError),
    /// The mapped range could not be read.
    #[error("reading the mapped results failed")]
    MapRange(#[from] wgpu::MapRangeError),
    /// A slot was read back that was never submitted.
    #[error("slot {0} has no dispatch in flight")]
    NothingInFlight(usize),
    /// A batch that is empty, too large, or runs past nonce 2^32 - 1.
    #[error("nonce range {start} + {count} is empty, over {MAX_DISPATCH}, or runs past 2^32")]
    BadRange {
        /// First nonce.
        start: u32,
        /// Count.
        count: u32,
    },
}

/// Which adapters to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdapterChoice {
    /// Every hardware adapter (not of type `Cpu`, such as llvmpipe).
    AllHardware,
    /// These indexes of [`list_adapters`], whatever their type: tests and
    /// `--gpu N` select llvmpipe this way.
    Indexes(Vec<usize>),
    /// The first adapter of type `Cpu` (llvmpipe), for tests.
    Software,
}

/// A GPU adapter as the user sees it.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    /// Index in [`list_adapters`].
    pub index: usize,
    /// Name, driver and type.
    pub info: wgpu::AdapterInfo,
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::VULKAN;
    wgpu::Instance::new(desc)
}

/// Every adapter the instance sees, in a stable order.
pub fn list_adapters() -> Vec<AdapterSummary> {
    adapters().into_iter().map(|(index, a)| AdapterSummary { index, info: a.get_info() }).collect()
}

fn adapters() -> Vec<(usize, wgpu::Adapter)> {
    let instance = instance();
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::VULKAN)).into_iter().enumerate().collect()
}

/// Opens a context on every adapter `choice` names.
pub fn open(choice: &AdapterChoice) -> Result<Vec<GpuContext>, GpuError> {
    let all = adapters();
    let names: Vec<String> = all.iter().map(|(i, a)| format!("{i}: {}", describe(&a.get_info()))).collect();
    let chosen: Vec<wgpu::Adapter> = match choice {
        AdapterChoice::AllHardware => {
            all.into_iter().filter(|(_, a)| a.get_info().device_type != wgpu::DeviceType::Cpu).map(|(_, a)| a).collect()
        }
        AdapterChoice::Indexes(indexes) => {
            all.into_iter().filter(|(i, _)| indexes.contains(i)).map(|(_, a)| a).collect()
        }
        AdapterChoice::Software => all
            .into_iter()
            .filter(|(_, a)| a.get_info().device_type == wgpu::DeviceType::Cpu)
            .take(1)
            .map(|(_, a)| a)
            .collect(),
    };
    if chosen.is_empty() {
        let seen = if names.is_empty() { "no Vulkan adapters at all".to_owned() } else { names.join(", ") };
        return Err(GpuError::NoAdapter(format!("asked for {choice:?}; seen: {seen}")));
    }
    chosen.into_iter().map(GpuContext::new).collect()
}

/// `name (type, driver)`.
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {} {})", info.name, info.device_type, info.driver, info.driver_info)
}

/// One dispatch's worth of work: a header and a nonce range.
#[derive(Debug, Clone)]
pub struct GpuBatch {
    /// The header's precomputation.
    pub work: HeaderWork,
    /// The first nonce.
    pub start: u32,
    /// How many nonces (1 to [`MAX_DISPATCH`], not past 2^32).
    pub count: u32,
}

/// A nonce the shader reported: its hash's top 32 bits are at most the
/// target's. Not yet checked in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Found {
    /// The nonce.
    pub nonce: u32,
}

/// What one dispatch reported.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchResult {
    /// The candidates, in no particular order.
    pub found: Vec<Found>,
    /// Candidates that did not fit in the result buffer (the range should
    /// be searched again, smaller, or the target is far too easy).
    pub lost: u32,
}

struct Slot {
    params: wgpu::Buffer,
    results: wgpu::Buffer,
    readback: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    in_flight: Option<wgpu::SubmissionIndex>,
}

/// One GPU, ready to hash: built once, used for every batch.
pub struct GpuContext {
    info: wgpu::AdapterInfo,
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipeline: wgpu::ComputePipeline,
    slots: [Slot; 2],
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext").field("adapter", &describe(&self.info)).finish_non_exhaustive()
    }
}

impl GpuContext {
    fn new(adapter: wgpu::Adapter) -> Result<GpuContext, GpuError> {
        let info = adapter.get_info();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("satpool-miner"),
            required_limits: wgpu::Limits::downlevel_defaults(),
            ..Default::default()
        }))
        .map_err(|source| GpuError::Device { adapter: info.name.clone(), source })?;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("sha256d.wgsl"),
            source: wgpu::ShaderSource::Wgsl(SHADER_SOURCE.into()),
        });
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("sha256d"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: wgpu::BufferSize::new(PARAMS_SIZE),
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: false },
                        has_dynamic_offset: false,
                        min_binding_size: wgpu::BufferSize::new(RESULTS_SIZE),
                    },
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("sha256d"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("sha256d"),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let slot = |n: usize| {
            let params = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(&format!("params {n}")),
                size: PARAMS_SIZE,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let results = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(&format!("results {n}")),
                contents: &[0u8; RESULTS_SIZE as usize],
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            });
            let readback = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(&format!("readback {n}")),
                size: RESULTS_SIZE,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&format!("sha256d {n}")),
                layout: &layout,
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: params.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: results.as_entire_binding() },
                ],
            });
            Slot { params, results, readback, bind_group, in_flight: None }
        };
        let slots = [slot(0), slot(1)];
        Ok(GpuContext { info, device, queue, pipeline, slots })
    }

    /// The adapter's name, type and driver.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// Queues `batch` on `slot` (0 or 1) and returns at once. The slot must
    /// have been collected since its last submit.
    pub fn submit(&mut self, slot: usize, batch: &GpuBatch) -> Result<(), GpuError> {
        let GpuBatch { work, start, count } = batch;
        let (start, count) = (*start, *count);
        if count == 0 || count > MAX_DISPATCH || u64::from(start) + u64::from(count) > 1 << 32 {
            return Err(GpuError::BadRange { start, count });
        }
        let per_invocation = count.div_ceil(WORKGROUP_SIZE * MAX_WORKGROUPS);
        let groups = count.div_ceil(WORKGROUP_SIZE * per_invocation);
        let mut params = [0u32; PARAMS_SIZE as usize / 4];
        params[..8].copy_from_slice(&work.midstate);
        params[8..16].copy_from_slice(&work.state3);
        params[16..19].copy_from_slice(&work.tail);
        params[20] = start;
        params[21] = count;
        params[22] = per_invocation;
        params[23] = work.target_top;
        let s = &mut self.slots[slot];
        self.queue.write_buffer(&s.params, 0, bytemuck::cast_slice(&params));
        self.queue.write_buffer(&s.results, 0, &[0u8; 4]);
        let mut encoder =
            self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("sha256d") });
        {
            let mut pass = encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("sha256d"), timestamp_writes: None });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &s.bind_group, &[]);
            pass.dispatch_workgroups(groups, 1, 1);
        }
        encoder.copy_buffer_to_buffer(&s.results, 0, &s.readback, 0, RESULTS_SIZE);
        s.in_flight = Some(self.queue.submit([encoder.finish()]));
        Ok(())
    }

    /// Waits for `slot`'s dispatch and reads its results back.
    pub fn collect(&mut self, slot: usize) -> Result<BatchResult, GpuError> {
        let s = &mut self.slots[slot];
        let index = s.in_flight.take().ok_or(GpuError::NothingInFlight(slot))?;
        let (tx, rx) = mpsc::channel();
        s.readback.map_async(wgpu::MapMode::Read, .., move |r| {
            // The receiver waits below; if it is gone there is nobody to tell.
            let _ = tx.send(r);
        });
        self.device.poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: None })?;
        // The callback has run once poll returned for this submission.
        rx.recv().map_err(|_| GpuError::Map(wgpu::BufferAsyncError))??;
        let result = {
            let view = s.readback.get_mapped_range(..)?;
            let words: &[u32] = bytemuck::cast_slice(&view);
            let reported = words[0];
            let kept = reported.min(MAX_RESULTS) as usize;
            let found = words[1..1 + kept].iter().map(|&nonce| Found { nonce }).collect();
            BatchResult { found, lost: reported.saturating_sub(MAX_RESULTS) }
        };
        s.readback.unmap();
        Ok(result)
    }
}

/// Runs one batch and waits for it: the candidates the shader reported.
pub fn run_batch(ctx: &mut GpuContext, batch: &GpuBatch) -> Result<BatchResult, GpuError> {
    ctx.submit(0, batch)?;
    ctx.collect(0)
}
