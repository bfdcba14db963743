/**
 * The names UDS (ISO 14229-1) gives its numbers, shared by the tester (uds.ts) and the simulated ECU (ecu-sim.ts):
 * service identifiers, negative response codes (Annex A.1) and the DTC status bits (Annex D.2).
 */

/** A byte, DID or CAN ID in upper-case hex, as diagnostic tools print them: hex(0x7e8, 3) -> `7E8`. */
export function hex(n: number, digits = 2): string {
  return n.toString(16).toUpperCase().padStart(digits, "0");
}

export const SID = {
  DiagnosticSessionControl: 0x10,
  ECUReset: 0x11,
  ClearDiagnosticInformation: 0x14,
  ReadDTCInformation: 0x19,
  ReadDataByIdentifier: 0x22,
  SecurityAccess: 0x27,
  WriteDataByIdentifier: 0x2e,
  RoutineControl: 0x31,
  TesterPresent: 0x3e,
} as const;

/** A negative response is `7F <request SID> <NRC>`. */
export const NEGATIVE_RESPONSE = 0x7f;
/** A positive response's first byte is the request's SID plus this. */
export const POSITIVE_OFFSET = 0x40;
/** Bit 7 of a sub-function byte: suppressPosRspMsgIndicationBit. */
export const SUPPRESS_POSITIVE = 0x80;

export const NRC = {
  generalReject: 0x10,
  serviceNotSupported: 0x11,
  subFunctionNotSupported: 0x12,
  incorrectMessageLengthOrInvalidFormat: 0x13,
  responseTooLong: 0x14,
  busyRepeatRequest: 0x21,
  conditionsNotCorrect: 0x22,
  requestSequenceError: 0x24,
  noResponseFromSubnetComponent: 0x25,
  failurePreventsExecutionOfRequestedAction: 0x26,
  requestOutOfRange: 0x31,
  securityAccessDenied: 0x33,
  authenticationRequired: 0x34,
  invalidKey: 0x35,
  exceededNumberOfAttempts: 0x36,
  requiredTimeDelayNotExpired: 0x37,
  uploadDownloadNotAccepted: 0x70,
  transferDataSuspended: 0x71,
  generalProgrammingFailure: 0x72,
  wrongBlockSequenceCounter: 0x73,
  requestCorrectlyReceivedResponsePending: 0x78,
  subFunctionNotSupportedInActiveSession: 0x7e,
  serviceNotSupportedInActiveSession: 0x7f,
  rpmTooHigh: 0x81,
  rpmTooLow: 0x82,
  engineIsRunning: 0x83,
  engineIsNotRunning: 0x84,
  engineRunTimeTooLow: 0x85,
  temperatureTooHigh: 0x86,
  temperatureTooLow: 0x87,
  vehicleSpeedTooHigh: 0x88,
  vehicleSpeedTooLow: 0x89,
  throttlePedalTooHigh: 0x8a,
  throttlePedalTooLow: 0x8b,
  transmissionRangeNotInNeutral: 0x8c,
  transmissionRangeNotInGear: 0x8d,
  brakeSwitchesNotClosed: 0x8f,
  shifterLeverNotInPark: 0x90,
  torqueConverterClutchLocked: 0x91,
  voltageTooHigh: 0x92,
  voltageTooLow: 0x93,
} as const;

export type NrcName = keyof typeof NRC;

const NRC_NAMES = new Map<number, string>(Object.entries(NRC).map(([name, code]) => [code, name]));

/** The name of a negative response code; ranges the standard reserves are named as such. */
export function nrcName(code: number): string {
  const n = NRC_NAMES.get(code);
  if (n) return n;
  if (code >= 0x38 && code <= 0x4f) return "reservedByExtendedDataLinkSecurityDocument";
  if (code >= 0x94 && code <= 0xef) return "reservedForSpecificConditionsNotCorrect";
  if (code >= 0xf0 && code <= 0xfe) return "vehicleManufacturerSpecificConditionsNotCorrect";
  return "ISOSAEReserved";
}

const SERVICE_NAMES = new Map<number, string>(Object.entries(SID).map(([name, code]) => [code, name]));

export function serviceName(sid: number): string {
  return SERVICE_NAMES.get(sid) ?? `service 0x${hex(sid)}`;
}

/** DTC status bits, bit 0 first (ISO 14229-1 Annex D.2). */
export const DTC_STATUS_BITS = [
  "testFailed",
  "testFailedThisOperationCycle",
  "pendingDTC",
  "confirmedDTC",
  "testNotCompletedSinceLastClear",
  "testFailedSinceLastClear",
  "testNotCompletedThisOperationCycle",
  "warningIndicatorRequested",
] as const;

export function statusBitNames(status: number): string[] {
  return DTC_STATUS_BITS.filter((_, i) => status & (1 << i));
}

/** Diagnostic sessions (DiagnosticSessionControl sub-functions). */
export const SESSIONS: Record<number, string> = {
  1: "defaultSession",
  2: "programmingSession",
  3: "extendedDiagnosticSession",
  4: "safetySystemDiagnosticSession",
};

export function sessionName(n: number): string {
  return SESSIONS[n] ?? `session 0x${hex(n)}`;
}

/** ECUReset sub-functions. */
export const RESET_TYPES: Record<number, string> = {
  1: "hardReset",
  2: "keyOffOnReset",
  3: "softReset",
  4: "enableRapidPowerShutDown",
  5: "disableRapidPowerShutDown",
};

/** Standard DIDs (ISO 14229-1 Annex C.1) a tester names when it prints them. */
export const STANDARD_DIDS: Record<number, string> = {
  0xf186: "ActiveDiagnosticSession",
  0xf187: "VehicleManufacturerSparePartNumber",
  0xf188: "VehicleManufacturerECUSoftwareNumber",
  0xf189: "VehicleManufacturerECUSoftwareVersionNumber",
  0xf18a: "SystemSupplierIdentifier",
  0xf18b: "ECUManufacturingDate",
  0xf18c: "ECUSerialNumber",
  0xf190: "VIN",
  0xf191: "VehicleManufacturerECUHardwareNumber",
  0xf192: "SystemSupplierECUHardwareNumber",
  0xf193: "SystemSupplierECUHardwareVersionNumber",
  0xf194: "SystemSupplierECUSoftwareNumber",
  0xf195: "SystemSupplierECUSoftwareVersionNumber",
  0xf197: "SystemNameOrEngineType",
};
