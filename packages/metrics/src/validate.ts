/** Argument checks, thrown as Node's own functions throw them (TypeError / RangeError with a code). */
import { ErrorCodes, PorterRangeError, PorterTypeError } from '@porter/core';

export function validateInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') {
    throw new PorterTypeError(ErrorCodes.INVALID_ARG_TYPE, `The "${name}" argument must be of type number.`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new PorterRangeError(
      ErrorCodes.OUT_OF_RANGE,
      `The value of "${name}" is out of range. It must be an integer >= ${min} and <= ${max}. Received ${value}`,
    );
  }
  return value;
}

export function validateString(value: unknown, name: string): string {
  if (typeof value !== 'string') {
    throw new PorterTypeError(ErrorCodes.INVALID_ARG_TYPE, `The "${name}" argument must be of type string.`);
  }
  return value;
}

export function validateObject(value: unknown, name: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new PorterTypeError(ErrorCodes.INVALID_ARG_TYPE, `The "${name}" argument must be of type object.`);
  }
  return value as Record<string, unknown>;
}

export function invalidValue(name: string, value: unknown, reason: string): PorterTypeError {
  return new PorterTypeError(
    ErrorCodes.INVALID_ARG_VALUE,
    `The argument '${name}' ${reason}. Received ${JSON.stringify(value) ?? String(value)}`,
  );
}
