/* base64 - placeholder until the module lands */
#include "config.h"
