import koffi, { type LibraryHandle } from 'koffi';
import { NvmlError } from './nvml-error.js';

/** One GPU as NVML sees it. Values NVML does not support on a device are null. */
export interface GpuDevice {
  index: number;
  name: string;
  uuid: string;
  memory: { totalBytes: number; freeBytes: number; usedBytes: number };
  utilization: { gpuPercent: number; memoryPercent: number } | null;
  temperatureC: number | null;
  ecc: { corrected: number; uncorrected: number } | null;
}

/** An Xid event (a GPU error the driver reports; 79 = fallen off the bus, 48 = double-bit ECC). */
export interface XidEvent {
  deviceIndex: number;
  xid: number;
}

export type NvmlOpen = { available: true; nvml: Nvml } | { available: false; reason: string };

const NVML_SUCCESS = 0;
const NVML_ERROR_NOT_SUPPORTED = 3;
const NVML_ERROR_FUNCTION_NOT_FOUND = 13;
const NVML_ERROR_TIMEOUT = 10;
const EVENT_TYPE_XID = 0x8n;
const TEMPERATURE_GPU = 0;
const ECC_CORRECTED = 0;
const ECC_UNCORRECTED = 1;
const ECC_AGGREGATE = 1;

// Types are registered with koffi once per process.
let typesDefined = false;
function defineTypes() {
  return {
    device: koffi.pointer('nvmlDevice_t', koffi.opaque()),
    eventSet: koffi.pointer('nvmlEventSet_t', koffi.opaque()),
    memory: koffi.struct('nvmlMemory_t', { total: 'uint64', free: 'uint64', used: 'uint64' }),
    utilization: koffi.struct('nvmlUtilization_t', { gpu: 'uint32', memory: 'uint32' }),
    temperature: koffi.struct('nvmlTemperature_t', {
      version: 'uint32',
      sensorType: 'int',
      temperature: 'int',
    }),
    eventData: koffi.struct('nvmlEventData_t', {
      device: 'nvmlDevice_t',
      eventType: 'uint64',
      eventData: 'uint64',
      gpuInstanceId: 'uint32',
      computeInstanceId: 'uint32',
    }),
  };
}

// nvmlTemperature_v1 = sizeof(nvmlTemperature_t) | (1 << 24)
const TEMPERATURE_V1 = 12 | (1 << 24);

/**
 * NVML through koffi (`libnvidia-ml.so.1`, or `$MARIE_NVML_LIBRARY`). `Nvml.open()` never throws
 * for a missing library: it reports NVML unavailable with the reason.
 */
export class Nvml {
  readonly library: string;
  readonly #f: Record<string, ((...args: any[]) => number) | undefined>;
  readonly #errorString: ((code: number) => string) | undefined;
  #eventSet: unknown;
  #handles = new Map<number, unknown>();

  private constructor(library: string, lib: LibraryHandle) {
    this.library = library;
    if (!typesDefined) {
      defineTypes();
      typesDefined = true;
    }
    const bind = (sig: string) => {
      try {
        return lib.func(sig) as (...args: any[]) => number;
      } catch {
        return undefined; // an older driver without this entry point
      }
    };
    this.#f = {
      init: bind('int nvmlInit_v2()'),
      shutdown: bind('int nvmlShutdown()'),
      count: bind('int nvmlDeviceGetCount_v2(_Out_ uint32_t *count)'),
      handle: bind('int nvmlDeviceGetHandleByIndex_v2(uint32_t index, _Out_ nvmlDevice_t *device)'),
      name: bind(
        'int nvmlDeviceGetName(nvmlDevice_t device, _Out_ uint8_t *name, uint32_t length)',
      ),
      uuid: bind(
        'int nvmlDeviceGetUUID(nvmlDevice_t device, _Out_ uint8_t *uuid, uint32_t length)',
      ),
      memory: bind('int nvmlDeviceGetMemoryInfo(nvmlDevice_t device, _Out_ nvmlMemory_t *memory)'),
      utilization: bind(
        'int nvmlDeviceGetUtilizationRates(nvmlDevice_t device, _Out_ nvmlUtilization_t *utilization)',
      ),
      temperatureV: bind(
        'int nvmlDeviceGetTemperatureV(nvmlDevice_t device, _Inout_ nvmlTemperature_t *temperature)',
      ),
      temperature: bind(
        'int nvmlDeviceGetTemperature(nvmlDevice_t device, int sensor, _Out_ uint32_t *temp)',
      ),
      ecc: bind(
        'int nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, int errorType, int counterType, _Out_ uint64_t *count)',
      ),
      eventSetCreate: bind('int nvmlEventSetCreate(_Out_ nvmlEventSet_t *set)'),
      registerEvents: bind(
        'int nvmlDeviceRegisterEvents(nvmlDevice_t device, uint64_t eventTypes, nvmlEventSet_t set)',
      ),
      eventWait: bind(
        'int nvmlEventSetWait_v2(nvmlEventSet_t set, _Out_ nvmlEventData_t *data, uint32_t timeoutms)',
      ),
      eventSetFree: bind('int nvmlEventSetFree(nvmlEventSet_t set)'),
      driverVersion: bind(
        'int nvmlSystemGetDriverVersion(_Out_ uint8_t *version, uint32_t length)',
      ),
    };
    const errorString = bind('const char *nvmlErrorString(int result)') as unknown as
      | ((code: number) => string)
      | undefined;
    this.#errorString = errorString;
  }

  /** Loads and initializes NVML; a machine without it gets `{ available: false, reason }`. */
  static open(library = process.env.MARIE_NVML_LIBRARY || 'libnvidia-ml.so.1'): NvmlOpen {
    let lib: LibraryHandle;
    try {
      lib = koffi.load(library);
    } catch (err) {
      // koffi's message does not name the library.
      return {
        available: false,
        reason: `NVML unavailable: ${library} cannot be loaded (${(err as Error).message})`,
      };
    }
    const nvml = new Nvml(library, lib);
    try {
      nvml.#check('nvmlInit_v2', nvml.#need('init')());
    } catch (err) {
      return { available: false, reason: `NVML unavailable: ${(err as Error).message}` };
    }
    return { available: true, nvml };
  }

  driverVersion(): string {
    const buf = Buffer.alloc(96);
    this.#check('nvmlSystemGetDriverVersion', this.#need('driverVersion')(buf, buf.length));
    return cString(buf);
  }

  deviceCount(): number {
    const out = [0];
    this.#check('nvmlDeviceGetCount_v2', this.#need('count')(out));
    return out[0]!;
  }

  /** Every reading of one device; a fatal code (GPU_IS_LOST, RESET_REQUIRED) throws NvmlError. */
  device(index: number): GpuDevice {
    const h = this.#handle(index);
    const name = Buffer.alloc(96);
    this.#check('nvmlDeviceGetName', this.#need('name')(h, name, name.length));
    const uuid = Buffer.alloc(96);
    this.#check('nvmlDeviceGetUUID', this.#need('uuid')(h, uuid, uuid.length));
    const mem: { total?: number; free?: number; used?: number } = {};
    this.#check('nvmlDeviceGetMemoryInfo', this.#need('memory')(h, mem));
    const util: { gpu?: number; memory?: number } = {};
    const u = this.#optional('nvmlDeviceGetUtilizationRates', this.#f.utilization?.(h, util));
    return {
      index,
      name: cString(name),
      uuid: cString(uuid),
      memory: {
        totalBytes: Number(mem.total),
        freeBytes: Number(mem.free),
        usedBytes: Number(mem.used),
      },
      utilization: u ? { gpuPercent: util.gpu!, memoryPercent: util.memory! } : null,
      temperatureC: this.#temperature(h),
      ecc: this.#ecc(h),
    };
  }

  devices(): GpuDevice[] {
    return Array.from({ length: this.deviceCount() }, (_, i) => this.device(i));
  }

  /**
   * Waits up to `timeoutMs` for an Xid event on any device (the event set is made on first use);
   * undefined when none came.
   */
  waitXid(timeoutMs = 0): XidEvent | undefined {
    if (this.#eventSet === undefined) {
      const out = [null];
      this.#check('nvmlEventSetCreate', this.#need('eventSetCreate')(out));
      this.#eventSet = out[0];
      for (let i = 0; i < this.deviceCount(); i++) {
        const r = this.#need('registerEvents')(this.#handle(i), EVENT_TYPE_XID, this.#eventSet);
        if (r !== NVML_ERROR_NOT_SUPPORTED) this.#check('nvmlDeviceRegisterEvents', r);
      }
    }
    const data: { device?: unknown; eventType?: bigint | number; eventData?: bigint | number } = {};
    const r = this.#need('eventWait')(this.#eventSet, data, timeoutMs);
    if (r === NVML_ERROR_TIMEOUT) return undefined;
    this.#check('nvmlEventSetWait_v2', r);
    if (BigInt(data.eventType ?? 0) !== EVENT_TYPE_XID) return undefined;
    let deviceIndex = -1;
    for (const [i, h] of this.#handles)
      if (koffi.address(h) === koffi.address(data.device)) deviceIndex = i;
    return { deviceIndex, xid: Number(data.eventData) };
  }

  shutdown(): void {
    if (this.#eventSet !== undefined) this.#f.eventSetFree?.(this.#eventSet);
    this.#eventSet = undefined;
    this.#handles.clear();
    this.#f.shutdown?.();
  }

  #handle(index: number): unknown {
    let h = this.#handles.get(index);
    if (h === undefined) {
      const out = [null];
      this.#check('nvmlDeviceGetHandleByIndex_v2', this.#need('handle')(index, out));
      h = out[0];
      this.#handles.set(index, h);
    }
    return h;
  }

  #temperature(h: unknown): number | null {
    if (this.#f.temperatureV) {
      const t = { version: TEMPERATURE_V1, sensorType: TEMPERATURE_GPU, temperature: 0 };
      const r = this.#f.temperatureV(h, t);
      if (r === NVML_SUCCESS) return t.temperature;
      if (r !== NVML_ERROR_NOT_SUPPORTED && r !== NVML_ERROR_FUNCTION_NOT_FOUND)
        this.#check('nvmlDeviceGetTemperatureV', r);
    }
    // Deprecated from CUDA 13, still what older drivers have.
    const out = [0];
    return this.#optional(
      'nvmlDeviceGetTemperature',
      this.#f.temperature?.(h, TEMPERATURE_GPU, out),
    )
      ? out[0]!
      : null;
  }

  #ecc(h: unknown): GpuDevice['ecc'] {
    const corrected = [0];
    const uncorrected = [0];
    if (
      !this.#optional(
        'nvmlDeviceGetTotalEccErrors',
        this.#f.ecc?.(h, ECC_CORRECTED, ECC_AGGREGATE, corrected),
      )
    )
      return null;
    this.#check(
      'nvmlDeviceGetTotalEccErrors',
      this.#f.ecc!(h, ECC_UNCORRECTED, ECC_AGGREGATE, uncorrected),
    );
    return { corrected: Number(corrected[0]), uncorrected: Number(uncorrected[0]) };
  }

  /** True on success, false for NOT_SUPPORTED or a missing entry point; throws otherwise. */
  #optional(call: string, code: number | undefined): boolean {
    if (code === undefined || code === NVML_ERROR_NOT_SUPPORTED) return false;
    this.#check(call, code);
    return true;
  }

  #need(name: string): (...args: any[]) => number {
    const f = this.#f[name];
    if (!f)
      throw new NvmlError(
        name,
        NVML_ERROR_FUNCTION_NOT_FOUND,
        `${this.library} has no such entry point`,
      );
    return f;
  }

  #check(call: string, code: number): void {
    if (code === NVML_SUCCESS) return;
    let description: string | undefined;
    try {
      description = this.#errorString?.(code);
    } catch {}
    throw new NvmlError(call, code, description);
  }
}

function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.subarray(0, end < 0 ? buf.length : end).toString('utf8');
}
