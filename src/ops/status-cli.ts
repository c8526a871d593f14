import { statusCommand } from './cli.js';

export default statusCommand;
