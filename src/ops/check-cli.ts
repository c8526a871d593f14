import { checkCommand } from './cli.js';

export default checkCommand;
