// The control plane's one error registry: stable codes, mapped here to ipvsadm's messages and exit codes.

/**
 * Errno-style codes a director operation can fail with, as the kernel's IPVS returns them. tsvsadm
 * turns them into ipvsadm's text with the operation's context (the same errno reads differently for
 * a service and a destination operation, as in libipvs's ipvs_strerror).
 */
export type IpvsErrno =
  | 'EEXIST'
  | 'ENOENT'
  | 'ESRCH'
  | 'EINVAL'
  | 'ERANGE'
  | 'EPERM'
  | 'ENOMEM'
  | 'EOPNOTSUPP'
  | 'EAFNOSUPPORT'
  | 'ENOPROTOOPT'
  | 'ENODEV';

/** The operation a control request performs, named as ipvsadm names its commands internally. */
export type IpvsOp =
  | 'add-service'
  | 'edit-service'
  | 'delete-service'
  | 'flush'
  | 'add-server'
  | 'edit-server'
  | 'delete-server'
  | 'list'
  | 'zero'
  | 'set'
  | 'timeout'
  | 'start-daemon'
  | 'stop-daemon'
  | 'connections'
  | 'address'
  | 'other';

/** An operation refused by the director; the state is unchanged when this is thrown. */
export class IpvsError extends Error {
  constructor(
    readonly code: IpvsErrno,
    readonly op: IpvsOp,
    detail?: string,
  ) {
    super(detail ?? ipvsMessage(op, code));
    this.name = 'IpvsError';
  }
}

const SVC_OPS: ReadonlySet<IpvsOp> = new Set(['add-service', 'edit-service', 'delete-service', 'zero', 'list']);
const DEST_OPS: ReadonlySet<IpvsOp> = new Set(['add-server', 'edit-server', 'delete-server']);

/** ipvsadm's text for a failed operation (libipvs ipvs_strerror, ipvsadm 1.31). */
export function ipvsMessage(op: IpvsOp, code: IpvsErrno): string {
  if (code === 'EEXIST') {
    if (op === 'add-service') return 'Service already exists';
    if (op === 'add-server') return 'Destination already exists';
    if (op === 'start-daemon') return 'Daemon has already run';
  }
  if (code === 'ENOENT') {
    if (op === 'add-service' || op === 'edit-service') return 'Scheduler or persistence engine not found';
    if (op === 'edit-server' || op === 'delete-server') return 'No such destination';
  }
  if (code === 'ESRCH') {
    if (SVC_OPS.has(op)) return 'No such service';
    if (DEST_OPS.has(op)) return 'Service not defined';
    if (op === 'stop-daemon') return 'No daemon is running';
  }
  switch (code) {
    case 'EPERM':
      return 'Permission denied (you must be root)';
    case 'EINVAL':
      return 'Invalid operation.  Possibly wrong module version, address not unicast, ...';
    case 'ENOPROTOOPT':
      return 'Protocol not available';
    case 'ENOMEM':
      return 'Memory allocation problem';
    case 'EOPNOTSUPP':
      return 'Operation not supported with IPv6';
    case 'EAFNOSUPPORT':
      return 'Operation not supported with specified address family';
    case 'ERANGE':
      return 'Numerical result out of range';
    case 'EEXIST':
      return 'File exists';
    case 'ENOENT':
      return 'No such file or directory';
    case 'ESRCH':
      return 'No such process';
    case 'ENODEV':
      return 'No such device';
  }
}

/** Exit status ipvsadm uses when the kernel refused an operation. */
export const EXIT_KERNEL_ERROR = 255;
/** Exit status for argument and validation errors (ipvsadm's fail(2, ...)). */
export const EXIT_USAGE = 2;
/** Exit status for listing errors (e.g. -L -t on a missing service). */
export const EXIT_LIST_ERROR = 1;
