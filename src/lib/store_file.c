/* store_file - placeholder until the module lands */
#include "config.h"
