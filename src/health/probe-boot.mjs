// Starts the probe helper under the tsx loader (it runs TypeScript, like the data-plane worker).
import { register } from 'tsx/esm/api';

register();
await import('./probe-main.ts');
