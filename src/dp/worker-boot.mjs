// Starts the data-plane worker thread under the tsx loader (Node 20 does not carry --import hooks into workers reliably).
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
